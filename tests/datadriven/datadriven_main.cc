// main() for golden-script tests: like gtest_main, plus --rewrite, which
// rewrites the scripts' expected outputs in the source tree instead of
// comparing (same as ETC_REWRITE=1). Run through `bazel run` so the test
// knows where the source tree is:
//
//   bazel run //raft:interaction_test -- --rewrite
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rewrite") == 0) {
      setenv("ETC_REWRITE", "1", /*overwrite=*/1);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
