"""The source lists the simulator's planted-bug variants (//sim/planted)
compile patched copies of: each library package exports its sources once,
for its own cc_library and for those variants."""

def planted_filegroups(srcs, hdrs):
    """Filegroups :planted_srcs and :planted_hdrs, visible to //sim/planted."""
    native.filegroup(
        name = "planted_srcs",
        srcs = srcs,
        visibility = ["//sim/planted:__pkg__"],
    )
    native.filegroup(
        name = "planted_hdrs",
        srcs = hdrs,
        visibility = ["//sim/planted:__pkg__"],
    )
