"""Simulator binaries with one planted bug each. Production targets are never
built with a bug: the patched source lives only in these test-only targets.

Each binary compiles just the one patched source file and links it ahead of
the unpatched libraries. The linker takes an object out of a library only to
define a symbol nothing before it defined, so the library's own copy of the
patched file is never linked (and if it were, its duplicate definitions would
fail the link rather than hide the bug). Compiling one file per bug instead of
every source keeps CI's build of 34 simulators to 34 compilations.

The bugs are defined in tools/planted_bugs.py (shared with tools/mutants.py).
"""

def _planted_source_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".cc")
    ctx.actions.run_shell(
        inputs = ctx.files.srcs + [ctx.file._catalog],
        outputs = [out],
        command = "python3 {catalog} apply {bug} {out} {srcs}".format(
            catalog = ctx.file._catalog.path,
            bug = ctx.attr.bug,
            out = out.path,
            srcs = " ".join([src.path for src in ctx.files.srcs]),
        ),
        mnemonic = "PlantBug",
        progress_message = "Planting %s" % ctx.attr.bug,
    )
    return [DefaultInfo(files = depset([out]))]

planted_source = rule(
    implementation = _planted_source_impl,
    attrs = {
        "bug": attr.string(mandatory = True),
        "srcs": attr.label_list(allow_files = [".cc"]),
        "_catalog": attr.label(
            default = "//tools:planted_bugs.py",
            allow_single_file = True,
        ),
    },
)

# Every library source from the Raft core up to the simulator: a bug's patched
# file is one of them.
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

def planted_simulator(bug):
    """etc-sim with `bug` planted: the target named `bug`."""
    planted_source(
        name = bug + "_src",
        bug = bug,
        srcs = PLANTED_SRCS,
        testonly = True,
        tags = ["manual"],
    )
    native.cc_binary(
        name = bug,
        srcs = [":" + bug + "_src"],
        deps = [
            # Headers a patched file may include that its library keeps private.
            ":planted_hdrs",
            "//sim:etc_sim_main",
        ],
        testonly = True,
        # Built only for the planted-bug runs, not by `bazel test //...`.
        tags = ["manual"],
    )
