"""One macro for protobuf (and optionally gRPC) C++ code generation.

Bazel 4's native proto rules want protobuf built from source, which is not
available offline. This calls Debian's system protoc (and grpc_cpp_plugin)
from a genrule instead and wraps the output in a cc_library.
"""

def etc_proto_library(name, srcs, deps = [], grpc = False, visibility = None, testonly = False):
    """Generates C++ for `srcs` and makes a cc_library called `name`.

    Args:
      name: the cc_library's name.
      srcs: .proto files in this package. Imports are resolved from the
        workspace root, so a proto imports "raft/raftpb.proto".
      deps: other etc_proto_library targets whose protos are imported.
      grpc: whether to also generate gRPC service stubs.
      visibility: the cc_library's visibility.
      testonly: whether only tests may depend on it.
    """
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    package = native.package_name()
    proto_deps = [dep + "_protos" for dep in deps]
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + proto_deps,
        visibility = visibility,
        testonly = testonly,
    )

    # $(GENDIR) holds the generated files of every package; protoc writes
    # <package>/<file>.pb.* below it, which is exactly where Bazel expects outs.
    cmd = "protoc --proto_path=. --cpp_out=$(GENDIR)"
    if grpc:
        cmd += " --grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin)"
    cmd += " " + " ".join(["%s/%s" % (package, src) if package else src for src in srcs])
    native.genrule(
        name = name + "_codegen",
        srcs = srcs + proto_deps,
        outs = outs,
        cmd = cmd,
        message = "protoc " + ", ".join(srcs),
        testonly = testonly,
    )
    libs = ["@system//:protobuf"]
    if grpc:
        libs.append("@system//:grpc")
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + libs,
        visibility = visibility,
        testonly = testonly,
    )
