/* A minimal test harness for the phivault C tests: no dependencies beyond libc. */
#ifndef PV_TEST_H
#define PV_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phivault.h"

static int pv_test_passed;
static int pv_test_failed;

/* Checks a condition; on failure prints where and the last error's code and detail. */
#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond) {                                                                       \
      pv_test_passed++;                                                               \
    } else {                                                                          \
      char detail_[256];                                                              \
      size_t n_ = 0;                                                                  \
      pv_last_error_message(detail_, sizeof detail_, &n_);                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error %u: %s)\n", __FILE__,      \
              __LINE__, #cond, (unsigned)pv_last_error_code(), detail_);              \
      pv_test_failed++;                                                               \
    }                                                                                 \
  } while (0)

/* Checks that an expression returns the expected pv_result. */
#define CHECK_RC(expr, want)                                                          \
  do {                                                                                \
    pv_result got_ = (expr);                                                          \
    if (got_ == (pv_result)(want)) {                                                  \
      pv_test_passed++;                                                               \
    } else {                                                                          \
      char detail_[256];                                                              \
      size_t n_ = 0;                                                                  \
      pv_last_error_message(detail_, sizeof detail_, &n_);                            \
      fprintf(stderr, "%s:%d: %s returned %u, want %s (%u); last error: %s\n",        \
              __FILE__, __LINE__, #expr, (unsigned)got_, #want, (unsigned)(want),     \
              detail_);                                                               \
      pv_test_failed++;                                                               \
    }                                                                                 \
  } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, PV_OK)

/* Prints the closing line ("N passed, N failed") and returns the exit status. */
static int pv_test_finish(const char *name) {
  printf("%s: %d passed, %d failed\n", name, pv_test_passed, pv_test_failed);
  return pv_test_failed == 0 ? 0 : 1;
}

/* Joins dir and name into out (size out_len); aborts if it does not fit. */
static void pv_test_path(char *out, size_t out_len, const char *dir, const char *name) {
  int n = snprintf(out, out_len, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= out_len) {
    fprintf(stderr, "path too long\n");
    exit(2);
  }
}

#endif /* PV_TEST_H */
