"""Repository rules that make Bazel 4.2.3 work offline with Debian's packages.

Debian's Bazel has no embedded distdir, so the repositories it would otherwise
download (@rules_cc, @remote_coverage_tools) are generated here, and every C++
library comes from the system through pkg-config. See ../shared/docs/build.md
and docs/ARCHITECTURE.md for why each piece exists.
"""

def _local_rules_cc_impl(repository_ctx):
    # @bazel_tools//tools/cpp loads @rules_cc//cc:defs.bzl. Debian's packaged
    # rules_cc is too new for Bazel 4, so re-export the native rules instead.
    repository_ctx.file("WORKSPACE", "workspace(name = \"rules_cc\")\n")
    repository_ctx.file("BUILD.bazel", "")
    repository_ctx.file("cc/BUILD.bazel", """\
package(default_visibility = ["//visibility:public"])

alias(
    name = "toolchain_type",
    actual = "@bazel_tools//tools/cpp:toolchain_type",
)
""")
    repository_ctx.file("cc/defs.bzl", """\
cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
""")

local_rules_cc = repository_rule(
    implementation = _local_rules_cc_impl,
    local = True,
)

def _empty_coverage_tools_impl(repository_ctx):
    # @bazel_tools//tools/test aliases two coverage tools to this repository.
    # Coverage through `bazel coverage` is therefore unavailable offline.
    repository_ctx.file("WORKSPACE", "workspace(name = \"remote_coverage_tools\")\n")
    repository_ctx.file("BUILD.bazel", """\
package(default_visibility = ["//visibility:public"])

filegroup(name = "coverage_report_generator")

filegroup(name = "lcov_merger")
""")

empty_coverage_tools = repository_rule(
    implementation = _empty_coverage_tools_impl,
    local = True,
)

def _system_libraries_impl(repository_ctx):
    # One cc_library per entry of `libraries`, whose link flags come from
    # pkg-config (which knows every transitive Abseil library) or, for
    # libraries without a .pc file, from the explicit list given.
    pkg_config = repository_ctx.which("pkg-config")
    if pkg_config == None:
        fail("pkg-config is not installed: run tools/setup.sh")
    build = ['package(default_visibility = ["//visibility:public"])\n']
    for name, spec in repository_ctx.attr.libraries.items():
        linkopts = []
        for item in spec.split(" "):
            if item == "":
                continue
            if item.startswith("-"):
                linkopts.append(item)
                continue
            result = repository_ctx.execute([pkg_config, "--libs", item])
            if result.return_code != 0:
                fail("pkg-config cannot find '%s' (for @system//:%s): %s\nRun tools/setup.sh to install the missing package." % (item, name, result.stderr))
            for flag in result.stdout.strip().split(" "):
                if flag != "" and flag not in linkopts:
                    linkopts.append(flag)
        build.append("cc_library(\n    name = %r,\n    linkopts = %r,\n)\n" % (name, linkopts))
    repository_ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % repository_ctx.name)
    repository_ctx.file("BUILD.bazel", "\n".join(build))

system_libraries = repository_rule(
    implementation = _system_libraries_impl,
    attrs = {
        # target name -> space-separated pkg-config modules and raw -l flags.
        "libraries": attr.string_dict(mandatory = True),
    },
    local = True,
)
