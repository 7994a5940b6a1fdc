"""Simulator binaries with one planted bug each, built from patched copies of
the sources. Production targets are never built with a bug: the patched
copies live only in these test-only targets' outputs.

The bugs are defined in tools/planted_bugs.py (shared with tools/mutants.py).
"""

def _planted_sources_impl(ctx):
    outs = []
    for src in ctx.files.srcs:
        outs.append(ctx.actions.declare_file(ctx.label.name + "/" + src.short_path))
    out_dir = "/".join([ctx.bin_dir.path, ctx.label.package, ctx.label.name])
    ctx.actions.run_shell(
        inputs = ctx.files.srcs + [ctx.file._catalog],
        outputs = outs,
        command = "python3 {catalog} apply {bug} {out_dir} {srcs}".format(
            catalog = ctx.file._catalog.path,
            bug = ctx.attr.bug,
            out_dir = out_dir,
            srcs = " ".join([src.path for src in ctx.files.srcs]),
        ),
        mnemonic = "PlantBug",
        progress_message = "Planting %s" % ctx.attr.bug,
    )
    return [DefaultInfo(files = depset(outs))]

planted_sources = rule(
    implementation = _planted_sources_impl,
    attrs = {
        "bug": attr.string(mandatory = True),
        "srcs": attr.label_list(allow_files = [".cc"]),
        "_catalog": attr.label(
            default = "//tools:planted_bugs.py",
            allow_single_file = True,
        ),
    },
)

# Every library source from the Raft core up to the simulator.
PLANTED_SRCS = [
    "//raft:planted_srcs",
    "//raft/quorum:planted_srcs",
    "//raft/tracker:planted_srcs",
    "//raft/confchange:planted_srcs",
    "//kv:planted_srcs",
    "//member:planted_srcs",
    "//storage:planted_srcs",
    "//sim:planted_srcs",
]

PLANTED_HDRS = [
    "//raft:planted_hdrs",
    "//raft/quorum:planted_hdrs",
    "//raft/tracker:planted_hdrs",
    "//raft/confchange:planted_hdrs",
    "//kv:planted_hdrs",
    "//member:planted_hdrs",
    "//storage:planted_hdrs",
    "//sim:planted_hdrs",
]

# What those sources need besides each other (never the unpatched libraries).
PLANTED_DEPS = [
    "//base:check",
    "//base:crc32c",
    "//member:memberpb",
    "//raft:raftpb",
    "//kv:kvpb",
    "//kv/authpb:authpb",
    "//kv/etcdserverpb:etcdserverpb",
    "//kv/mvccpb:mvccpb",
    "@system//:libcrypto",
    "@system//:absl_btree",
    "@system//:absl_containers",
    "@system//:absl_hash",
    "@system//:absl_flags",
    "@system//:absl_status",
    "@system//:absl_strings",
    "@system//:absl_synchronization",
]

def planted_simulator(bug):
    """etc-sim with `bug` planted: the target named `bug`."""
    planted_sources(
        name = bug + "_srcs",
        bug = bug,
        srcs = PLANTED_SRCS,
        testonly = True,
        tags = ["manual"],
    )
    native.cc_library(
        name = bug + "_lib",
        srcs = [":" + bug + "_srcs"],
        hdrs = PLANTED_HDRS,
        deps = PLANTED_DEPS,
        testonly = True,
        tags = ["manual"],
    )
    native.cc_binary(
        name = bug,
        srcs = ["//sim:main.cc"],
        deps = [":" + bug + "_lib"],
        testonly = True,
        # Built only for the planted-bug runs, not by `bazel test //...`.
        tags = ["manual"],
    )
