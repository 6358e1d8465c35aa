/*
 * Tokenization through the C API: presets (FF1 ssn, vaulted mrn, subject-bound dob), views,
 * batches (all or nothing), and bad input (unknown field, forged token, invalid UTF-8, NULL
 * arrays, huge counts, bad view).
 *
 * Usage: test_tokens SCRATCH_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "pv_test.h"

static char sentinel_storage;
#define SENTINEL ((void *)&sentinel_storage)

static int text_is(const pv_buffer *buf, const char *want) {
  return buf != NULL && buf != SENTINEL && pv_buffer_len(buf) == strlen(want) &&
         strcmp((const char *)pv_buffer_data(buf), want) == 0;
}

static void test_single(const pv_vault *vault) {
  pv_buffer *t1 = NULL, *t2 = NULL, *back = NULL, *masked = NULL, *redacted = NULL;
  const char *ssn = "900-12-3456";

  /* FF1: same shape, consistent, reversible, masked view keeps the last 4. */
  CHECK_OK(pv_vault_tokenize(vault, "ssn", 3, ssn, strlen(ssn), NULL, 0, &t1));
  CHECK_OK(pv_vault_tokenize(vault, "ssn", 3, ssn, strlen(ssn), NULL, 0, &t2));
  CHECK(pv_buffer_len(t1) == strlen(ssn) && !text_is(t1, ssn));
  CHECK(text_is(t1, (const char *)pv_buffer_data(t2)));
  const char *tok = (const char *)pv_buffer_data(t1);
  CHECK_OK(pv_vault_detokenize(vault, "ssn", 3, tok, strlen(tok), NULL, 0, PV_VIEW_PLAINTEXT,
                               &back));
  CHECK(text_is(back, ssn));
  CHECK_OK(pv_vault_detokenize(vault, "ssn", 3, tok, strlen(tok), NULL, 0, PV_VIEW_MASKED,
                               &masked));
  CHECK(text_is(masked, "***-**-3456"));
  CHECK_OK(pv_vault_detokenize(vault, "ssn", 3, tok, strlen(tok), NULL, 0, PV_VIEW_REDACTED,
                               &redacted));
  CHECK(text_is(redacted, "[REDACTED]"));
  pv_buffer_free(back);
  pv_buffer_free(masked);
  pv_buffer_free(redacted);

  /* Vaulted MRN: a forged token of the right shape is refused with the one code. */
  pv_buffer *m = NULL, *mb = NULL;
  CHECK_OK(pv_vault_tokenize(vault, "mrn", 3, "MRN0012345", 10, NULL, 0, &m));
  const char *mt = (const char *)pv_buffer_data(m);
  CHECK_OK(pv_vault_detokenize(vault, "mrn", 3, mt, strlen(mt), NULL, 0, PV_VIEW_PLAINTEXT, &mb));
  CHECK(text_is(mb, "MRN0012345"));
  pv_buffer_free(mb);
  mb = SENTINEL;
  char *forged = strdup(mt);
  CHECK(forged != NULL);
  if (forged != NULL) {
    forged[0] = (char)(forged[0] == 'A' ? 'B' : 'A');
    CHECK_RC(pv_vault_detokenize(vault, "mrn", 3, forged, strlen(forged), NULL, 0,
                                 PV_VIEW_PLAINTEXT, &mb),
             PV_INVALID_TOKEN);
    free(forged);
  }

  /* Subject-bound date of birth. */
  pv_buffer *d = SENTINEL;
  CHECK_RC(pv_vault_tokenize(vault, "dob", 3, "1961-07-04", 10, NULL, 0, &d),
           PV_SUBJECT_REQUIRED);
  CHECK(d == SENTINEL);
  CHECK_OK(pv_vault_tokenize(vault, "dob", 3, "1961-07-04", 10, "patient-1", 9, &d));
  CHECK(d != SENTINEL && pv_buffer_len(d) == 10);
  pv_buffer_free(d);

  /* Bad input. */
  CHECK_RC(pv_vault_tokenize(vault, "nope", 4, "x", 1, NULL, 0, &mb), PV_UNKNOWN_FIELD);
  CHECK_RC(pv_vault_tokenize(vault, "ssn", 3, "\xff\xfe", 2, NULL, 0, &mb), PV_INVALID_UTF8);
  CHECK_RC(pv_vault_tokenize(vault, "ssn", 3, NULL, 4, NULL, 0, &mb), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_tokenize(vault, "ssn", 3, ssn, SIZE_MAX, NULL, 0, &mb), PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_vault_tokenize(vault, "ssn", 3, ssn, strlen(ssn), NULL, 0, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_tokenize(NULL, "ssn", 3, ssn, strlen(ssn), NULL, 0, &mb), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_detokenize(vault, "ssn", 3, tok, strlen(tok), NULL, 0, 7, &mb),
           PV_INVALID_ARGUMENT);
  CHECK(mb == SENTINEL);

  pv_buffer_free(t1);
  pv_buffer_free(t2);
  pv_buffer_free(m);
}

static void test_batch(const pv_vault *vault) {
  const pv_str values[3] = {{"MRN0000001", 10}, {"MRN0000002", 10}, {"MRN0000003", 10}};
  pv_buffer *tokens[3] = {NULL, NULL, NULL};
  pv_buffer *back[3] = {NULL, NULL, NULL};

  CHECK_OK(pv_vault_tokenize_many(vault, "mrn", 3, values, 3, tokens));
  pv_str toks[3];
  for (int i = 0; i < 3; i++) {
    CHECK(tokens[i] != NULL);
    toks[i].data = (const char *)pv_buffer_data(tokens[i]);
    toks[i].len = pv_buffer_len(tokens[i]);
  }
  CHECK_OK(pv_vault_detokenize_many(vault, "mrn", 3, toks, 3, PV_VIEW_MASKED, back));
  CHECK(text_is(back[0], "*******001") && text_is(back[2], "*******003"));
  for (int i = 0; i < 3; i++) pv_buffer_free(back[i]);
  CHECK_OK(pv_vault_detokenize_many(vault, "mrn", 3, toks, 3, PV_VIEW_PLAINTEXT, back));
  CHECK(text_is(back[1], "MRN0000002"));
  for (int i = 0; i < 3; i++) pv_buffer_free(back[i]);

  /* All or nothing: one bad item, no output written. */
  const pv_str bad[2] = {{"MRN0000004", 10}, {"\xc3\x28", 2}};
  pv_buffer *out[2] = {SENTINEL, SENTINEL};
  CHECK_RC(pv_vault_tokenize_many(vault, "mrn", 3, bad, 2, out), PV_INVALID_UTF8);
  const pv_str nullitem[1] = {{NULL, 3}};
  CHECK_RC(pv_vault_tokenize_many(vault, "mrn", 3, nullitem, 1, out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_tokenize_many(vault, "mrn", 3, NULL, 2, out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_tokenize_many(vault, "mrn", 3, values, 2, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_tokenize_many(vault, "mrn", 3, values, SIZE_MAX, out), PV_LENGTH_TOO_LARGE);
  CHECK(out[0] == SENTINEL && out[1] == SENTINEL);
  /* An empty batch is fine. */
  CHECK_OK(pv_vault_tokenize_many(vault, "mrn", 3, NULL, 0, NULL));

  for (int i = 0; i < 3; i++) pv_buffer_free(tokens[i]);
}

/* A large batch on the vault's thread pool gives the same tokens as the calling thread. */
static void test_threads(pv_vault *vault) {
  enum { N = 2000 };
  static char ssn[N][24];
  static pv_str values[N];
  static pv_buffer *serial[N], *pooled[N], *back[N];
  for (int i = 0; i < N; i++) {
    snprintf(ssn[i], sizeof ssn[i], "%03u-45-%04u", 100u + (unsigned)i % 800u, (unsigned)i);
    values[i].data = ssn[i];
    values[i].len = strlen(ssn[i]);
  }
  CHECK_OK(pv_vault_set_threads(vault, 1));
  CHECK_OK(pv_vault_tokenize_many(vault, "ssn", 3, values, N, serial));
  CHECK_OK(pv_vault_set_threads(vault, 2));
  CHECK_OK(pv_vault_tokenize_many(vault, "ssn", 3, values, N, pooled));
  int same = 1;
  static pv_str toks[N];
  for (int i = 0; i < N; i++) {
    same &= pv_buffer_len(serial[i]) == pv_buffer_len(pooled[i]) &&
            memcmp(pv_buffer_data(serial[i]), pv_buffer_data(pooled[i]), pv_buffer_len(serial[i])) == 0;
    toks[i].data = (const char *)pv_buffer_data(pooled[i]);
    toks[i].len = pv_buffer_len(pooled[i]);
  }
  CHECK(same);
  CHECK_OK(pv_vault_detokenize_many(vault, "ssn", 3, toks, N, PV_VIEW_PLAINTEXT, back));
  int round_trips = 1;
  for (int i = 0; i < N; i++) {
    round_trips &= text_is(back[i], ssn[i]);
    pv_buffer_free(back[i]);
    pv_buffer_free(serial[i]);
    pv_buffer_free(pooled[i]);
  }
  CHECK(round_trips);
  CHECK_OK(pv_vault_set_threads(vault, 0));
  CHECK_OK(pv_vault_set_threads(vault, 1));
  CHECK_RC(pv_vault_set_threads(NULL, 2), PV_NULL_ARGUMENT);
}

static void test_define_fields(const pv_vault *vault) {
  const char *toml =
      "[[field]]\n"
      "name = \"bed\"\n"
      "kind = \"vaulted\"\n";
  size_t n = 0;
  pv_result rc = pv_vault_define_fields_toml(vault, toml, strlen(toml), &n);
  CHECK(rc == PV_OK);
  CHECK(n == 1);
  pv_buffer *t = NULL;
  CHECK_OK(pv_vault_tokenize(vault, "bed", 3, "0012345678", 10, NULL, 0, &t));
  pv_buffer_free(t);
  CHECK_RC(pv_vault_define_fields_toml(vault, "[[field]\n", 9, NULL), PV_INVALID_ARGUMENT);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  char path[4096];
  pv_test_path(path, sizeof path, argv[1], "tokens.vault");
  uint8_t key[PV_KEY_LEN];
  pv_root_key *root = NULL;
  pv_vault *vault = NULL;
  CHECK_OK(pv_key_generate(key, sizeof key));
  CHECK_OK(pv_root_key_from_bytes(key, sizeof key, &root));
  CHECK_OK(pv_vault_create(path, strlen(path), root, &vault));
  pv_root_key_free(root);
  if (vault != NULL) {
    test_single(vault);
    test_batch(vault);
    test_threads(vault);
    test_define_fields(vault);
  }
  pv_vault_free(vault);
  return pv_test_finish("test_tokens");
}
