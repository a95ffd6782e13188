// Minimal assertion helpers for the framework-free core tests (no gtest
// offline): a failed CHECK prints where and why, and the test exits non-zero.
#ifndef DES_TF_OPS_CC_TESTS_CHECK_H_
#define DES_TF_OPS_CC_TESTS_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define DES_CHECK(cond)                                                   \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                \
      std::exit(1);                                                       \
    }                                                                     \
  } while (0)

#define DES_CHECK_EQ(a, b) DES_CHECK((a) == (b))

#endif  // DES_TF_OPS_CC_TESTS_CHECK_H_
