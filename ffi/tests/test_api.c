/*
 * The phivault C API from C: round trips, every documented status for bad input (NULL
 * pointers, zero and huge lengths, invalid UTF-8, truncated and tampered ciphertexts, double
 * close), and that outputs are written only on success.
 *
 * Usage: test_api SCRATCH_DIR   (an empty, writable directory; vaults are created in it)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "pv_test.h"

static char sentinel_storage;
/* An output pointer value that a failing call must leave unchanged. */
#define SENTINEL ((void *)&sentinel_storage)

static const char *scratch;
static uint8_t key_a[PV_KEY_LEN];
static uint8_t key_b[PV_KEY_LEN];

static pv_root_key *root_from(const uint8_t *key) {
  pv_root_key *root = NULL;
  CHECK_OK(pv_root_key_from_bytes(key, PV_KEY_LEN, &root));
  return root;
}

static pv_context *context2(const char *k1, const char *v1, const char *k2, const char *v2) {
  pv_context *ctx = NULL;
  CHECK_OK(pv_context_new(&ctx));
  CHECK_OK(pv_context_add(ctx, k1, strlen(k1), v1, strlen(v1)));
  if (k2 != NULL) {
    CHECK_OK(pv_context_add(ctx, k2, strlen(k2), v2, strlen(v2)));
  }
  return ctx;
}

/* Whether needle occurs in the len bytes at hay. */
static int contains(const uint8_t *hay, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; n <= len && i <= len - n; i++) {
    if (memcmp(hay + i, needle, n) == 0) return 1;
  }
  return 0;
}

static int buffer_equals(const pv_buffer *buf, const void *data, size_t len) {
  return pv_buffer_len(buf) == len && (len == 0 || memcmp(pv_buffer_data(buf), data, len) == 0);
}

static void test_messages_and_frees(void) {
  char buf[128];
  size_t n = 12345;
  CHECK(pv_version() != NULL && strlen(pv_version()) > 0);
  CHECK_OK(pv_error_message(PV_AUTHENTICATION_FAILED, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "authentication failed") == 0 && n == strlen(buf));
  CHECK_OK(pv_error_message(PV_OK, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "success") == 0);
  CHECK_OK(pv_error_message(77777, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "unknown status code") == 0);
  /* Truncation: NUL-terminated, reported. */
  char small[5];
  CHECK_RC(pv_error_message(PV_AUTHENTICATION_FAILED, small, sizeof small, &n),
           PV_BUFFER_TOO_SMALL);
  CHECK(n == 4 && strcmp(small, "auth") == 0);
  n = 99;
  CHECK_RC(pv_error_message(PV_OK, buf, 0, &n), PV_BUFFER_TOO_SMALL);
  CHECK(n == 99);
  CHECK_RC(pv_error_message(PV_OK, NULL, 10, &n), PV_NULL_ARGUMENT);
  CHECK_RC(pv_error_message(PV_OK, buf, sizeof buf, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_last_error_message(NULL, 0, NULL), PV_NULL_ARGUMENT);

  /* free(NULL) is a no-op for every handle type. */
  pv_vault_free(NULL);
  pv_buffer_free(NULL);
  pv_context_free(NULL);
  pv_root_key_free(NULL);
  CHECK(pv_buffer_len(NULL) == 0);
  CHECK(pv_buffer_data(NULL) == NULL);
  CHECK(pv_context_len(NULL) == 0);
}

static void test_keys(void) {
  CHECK_OK(pv_key_generate(key_a, sizeof key_a));
  CHECK_OK(pv_key_generate(key_b, sizeof key_b));
  CHECK(memcmp(key_a, key_b, PV_KEY_LEN) != 0);
  CHECK_RC(pv_key_generate(NULL, PV_KEY_LEN), PV_NULL_ARGUMENT);
  CHECK_RC(pv_key_generate(key_b, PV_KEY_LEN - 1), PV_INVALID_ARGUMENT);

  pv_root_key *root = SENTINEL;
  CHECK_RC(pv_root_key_from_bytes(NULL, PV_KEY_LEN, &root), PV_NULL_ARGUMENT);
  CHECK_RC(pv_root_key_from_bytes(NULL, 0, &root), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_root_key_from_bytes(key_a, PV_KEY_LEN - 1, &root), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_root_key_from_bytes(key_a, SIZE_MAX, &root), PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_root_key_from_bytes(key_a, (size_t)PTRDIFF_MAX + 1, &root), PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_root_key_from_bytes(key_a, PV_KEY_LEN, NULL), PV_NULL_ARGUMENT);
  CHECK(root == SENTINEL);
  /* 64 hex digits and a newline: a key file's text form. */
  const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
  CHECK_OK(pv_root_key_from_bytes((const uint8_t *)hex, strlen(hex), &root));
  pv_root_key_free(root);

  const uint8_t bad_utf8[] = {'p', 'w', 0xff, 0xfe};
  root = SENTINEL;
  CHECK_RC(pv_root_key_from_passphrase((const char *)bad_utf8, sizeof bad_utf8, NULL, &root),
           PV_INVALID_UTF8);
  CHECK_RC(pv_root_key_from_passphrase(NULL, 8, NULL, &root), PV_NULL_ARGUMENT);
  CHECK(root == SENTINEL);
}

static void test_context(void) {
  pv_context *ctx = NULL;
  CHECK_RC(pv_context_new(NULL), PV_NULL_ARGUMENT);
  CHECK_OK(pv_context_new(&ctx));
  CHECK_RC(pv_context_add(NULL, "k", 1, "v", 1), PV_NULL_ARGUMENT);
  CHECK_RC(pv_context_add(ctx, NULL, 1, "v", 1), PV_NULL_ARGUMENT);
  CHECK_RC(pv_context_add(ctx, "k", 1, NULL, 1), PV_NULL_ARGUMENT);
  CHECK_RC(pv_context_add(ctx, "", 0, "v", 1), PV_INVALID_ARGUMENT); /* empty key */
  CHECK_RC(pv_context_add(ctx, "k", SIZE_MAX, "v", 1), PV_LENGTH_TOO_LARGE);
  const char bad[] = {'r', (char)0xc3, (char)0x28}; /* invalid 2-byte sequence */
  CHECK_RC(pv_context_add(ctx, bad, sizeof bad, "v", 1), PV_INVALID_UTF8);
  CHECK_RC(pv_context_add(ctx, "k", 1, bad, sizeof bad), PV_INVALID_UTF8);
  CHECK(pv_context_len(ctx) == 0);
  CHECK_OK(pv_context_add(ctx, "k", 1, NULL, 0)); /* empty value is allowed */
  CHECK_RC(pv_context_add(ctx, "k", 1, "x", 1), PV_INVALID_ARGUMENT); /* duplicate key */
  CHECK(pv_context_len(ctx) == 1);
  pv_context_free(ctx);
}

static pv_vault *test_create_open(const char *path) {
  pv_root_key *root = root_from(key_a);
  pv_vault *vault = SENTINEL;

  CHECK_RC(pv_vault_create(NULL, 5, root, &vault), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_create(NULL, 0, root, &vault), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_create(path, SIZE_MAX, root, &vault), PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_vault_create(path, strlen(path), NULL, &vault), PV_NULL_ARGUMENT);
  /* A NULL output is refused before anything is created. */
  CHECK_RC(pv_vault_create(path, strlen(path), root, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_open(path, strlen(path), root, &vault), PV_VAULT_NOT_FOUND);
  CHECK(vault == SENTINEL);

  CHECK_OK(pv_vault_create(path, strlen(path), root, &vault));
  CHECK(vault != SENTINEL && vault != NULL);

  /* The directory is locked while the handle is open. */
  pv_vault *second = SENTINEL;
  CHECK_RC(pv_vault_open(path, strlen(path), root, &second), PV_VAULT_LOCKED);
  pv_result again = pv_vault_create(path, strlen(path), root, &second);
  CHECK(again == PV_VAULT_EXISTS || again == PV_VAULT_LOCKED);
  CHECK(second == SENTINEL);
  pv_root_key_free(root);
  return vault;
}

static void test_encrypt_decrypt(const pv_vault *vault) {
  const char *note = "Patient 4711: HbA1c 9.2%";
  pv_context *ctx = context2("record", "4711", "field", "note");
  pv_context *other = context2("record", "4712", "field", "note");
  pv_buffer *env = NULL, *text = NULL, *plain = NULL;

  CHECK_OK(pv_vault_encrypt(vault, (const uint8_t *)note, strlen(note), ctx, &env));
  CHECK(pv_buffer_len(env) > strlen(note));
  CHECK(!contains(pv_buffer_data(env), pv_buffer_len(env), note));
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(env), pv_buffer_len(env), ctx, &plain));
  CHECK(buffer_equals(plain, note, strlen(note)));
  pv_buffer_free(plain);

  CHECK_OK(pv_vault_encrypt_text(vault, (const uint8_t *)note, strlen(note), ctx, &text));
  const char *t = (const char *)pv_buffer_data(text);
  CHECK(strncmp(t, "pv1:default:1:", 14) == 0);
  CHECK(strlen(t) == pv_buffer_len(text)); /* NUL-terminated, no embedded NUL */
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(text), pv_buffer_len(text), ctx, &plain));
  CHECK(buffer_equals(plain, note, strlen(note)));
  pv_buffer_free(plain);

  /* Empty plaintext: NULL with length 0. */
  pv_buffer *empty = NULL;
  CHECK_OK(pv_vault_encrypt(vault, NULL, 0, ctx, &empty));
  plain = SENTINEL;
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(empty), pv_buffer_len(empty), ctx, &plain));
  CHECK(plain != SENTINEL && pv_buffer_len(plain) == 0 && pv_buffer_data(plain)[0] == 0);
  pv_buffer_free(plain);
  pv_buffer_free(empty);

  /* Deterministic: equal inputs give equal envelopes; randomized do not. */
  pv_buffer *d1 = NULL, *d2 = NULL, *r2 = NULL;
  const char *mrn = "MRN-900-12-3456";
  CHECK_OK(pv_vault_encrypt_with(vault, (const uint8_t *)mrn, strlen(mrn), ctx, NULL, 0,
                                 PV_ENCRYPT_DETERMINISTIC | PV_ENCRYPT_TEXT, &d1));
  CHECK_OK(pv_vault_encrypt_with(vault, (const uint8_t *)mrn, strlen(mrn), ctx, "default", 7,
                                 PV_ENCRYPT_DETERMINISTIC | PV_ENCRYPT_TEXT, &d2));
  CHECK(strcmp((const char *)pv_buffer_data(d1), (const char *)pv_buffer_data(d2)) == 0);
  CHECK_OK(pv_vault_encrypt(vault, (const uint8_t *)note, strlen(note), ctx, &r2));
  CHECK(!buffer_equals(r2, pv_buffer_data(env), pv_buffer_len(env)));
  pv_buffer_free(d1);
  pv_buffer_free(d2);
  pv_buffer_free(r2);

  /* Bad arguments: documented status, output untouched. */
  pv_buffer *out = SENTINEL;
  const uint8_t *p = (const uint8_t *)note;
  CHECK_RC(pv_vault_encrypt(NULL, p, 4, ctx, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt(vault, NULL, 4, ctx, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt(vault, p, 4, NULL, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt(vault, p, 4, ctx, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt(vault, p, SIZE_MAX, ctx, &out), PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_vault_encrypt(vault, p, (size_t)PTRDIFF_MAX + 1, ctx, &out), PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_vault_encrypt_with(vault, p, 4, ctx, NULL, 0, 0x80, &out), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_with(vault, p, 4, ctx, "nope", 4, 0, &out), PV_UNKNOWN_KEYRING);
  CHECK_RC(pv_vault_encrypt_with(vault, p, 4, ctx, "\xff", 1, 0, &out), PV_INVALID_UTF8);
  CHECK_RC(pv_vault_encrypt_for_subject(vault, p, 4, ctx, "patient-1", 9,
                                        PV_ENCRYPT_DETERMINISTIC, &out),
           PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_for_subject(vault, p, 4, ctx, NULL, 0, 0, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_decrypt(vault, NULL, 10, ctx, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_decrypt(vault, pv_buffer_data(env), SIZE_MAX, ctx, &out),
           PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_vault_decrypt(vault, pv_buffer_data(env), pv_buffer_len(env), ctx, NULL),
           PV_NULL_ARGUMENT);
  CHECK(out == SENTINEL);

  /* Wrong context: the one opaque failure. */
  CHECK_RC(pv_vault_decrypt(vault, pv_buffer_data(env), pv_buffer_len(env), other, &out),
           PV_AUTHENTICATION_FAILED);
  CHECK_RC(pv_last_error_code(), PV_AUTHENTICATION_FAILED);
  char detail[256];
  size_t n = 0;
  CHECK_OK(pv_last_error_message(detail, sizeof detail, &n));
  CHECK(n > 0 && strstr(detail, "4712") == NULL && strstr(detail, "HbA1c") == NULL);

  /* Every truncation of the binary and text envelopes fails authentication. */
  size_t len = pv_buffer_len(env);
  int truncations_ok = 1;
  for (size_t cut = 0; cut < len; cut++) {
    if (pv_vault_decrypt(vault, pv_buffer_data(env), cut, ctx, &out) != PV_AUTHENTICATION_FAILED)
      truncations_ok = 0;
  }
  CHECK(truncations_ok);
  size_t tlen = pv_buffer_len(text);
  int text_truncations_ok = 1;
  for (size_t cut = 1; cut < tlen; cut++) {
    if (pv_vault_decrypt(vault, pv_buffer_data(text), cut, ctx, &out) != PV_AUTHENTICATION_FAILED)
      text_truncations_ok = 0;
  }
  CHECK(text_truncations_ok);

  /* Every single-bit flip of the binary envelope is refused; outside the header's plain
   * fields (version, keyring name, key version) it is the one opaque failure. */
  uint8_t *copy = malloc(len);
  CHECK(copy != NULL);
  if (copy != NULL) {
    int all_refused = 1, body_opaque = 1;
    for (size_t i = 0; i < len; i++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(copy, pv_buffer_data(env), len);
        copy[i] ^= (uint8_t)(1u << bit);
        pv_result rc = pv_vault_decrypt(vault, copy, len, ctx, &out);
        if (rc == PV_OK) all_refused = 0;
        if (i >= len - 32 && rc != PV_AUTHENTICATION_FAILED) body_opaque = 0;
      }
    }
    CHECK(all_refused);
    CHECK(body_opaque);
    free(copy);
  }
  /* A tampered text envelope, and text that is not UTF-8. */
  char *tcopy = strdup((const char *)pv_buffer_data(text));
  CHECK(tcopy != NULL);
  if (tcopy != NULL) {
    tcopy[tlen - 3] = (char)(tcopy[tlen - 3] == 'A' ? 'B' : 'A');
    CHECK_RC(pv_vault_decrypt(vault, (const uint8_t *)tcopy, tlen, ctx, &out),
             PV_AUTHENTICATION_FAILED);
    tcopy[tlen - 3] = (char)0xff;
    CHECK_RC(pv_vault_decrypt(vault, (const uint8_t *)tcopy, tlen, ctx, &out),
             PV_AUTHENTICATION_FAILED);
    free(tcopy);
  }
  const uint8_t garbage[] = {0xff, 0x00, 0x13, 0x37};
  pv_result g = pv_vault_decrypt(vault, garbage, sizeof garbage, ctx, &out);
  CHECK(g == PV_AUTHENTICATION_FAILED || g == PV_UNSUPPORTED_VERSION);
  CHECK(out == SENTINEL);

  pv_buffer_free(env);
  pv_buffer_free(text);
  pv_context_free(ctx);
  pv_context_free(other);
}

static void test_records(const pv_vault *vault) {
  const char *note = "Patient reports chest pain";
  pv_buffer *out = SENTINEL;
  bool deleted = false;

  CHECK_OK(pv_vault_put(vault, "notes", 5, "MRN-4711", 8, (const uint8_t *)note, strlen(note),
                        NULL, 0));
  CHECK_OK(pv_vault_get(vault, "notes", 5, "MRN-4711", 8, &out));
  CHECK(out != SENTINEL && buffer_equals(out, note, strlen(note)));
  pv_buffer_free(out);
  out = SENTINEL;

  CHECK_RC(pv_vault_get(vault, "notes", 5, "MRN-0000", 8, &out), PV_NOT_FOUND);
  CHECK_RC(pv_vault_get(vault, "notes", 5, "MRN-4711", 8, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_get(NULL, "notes", 5, "MRN-4711", 8, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_get(vault, "notes", 5, NULL, 8, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_get(vault, "notes", 5, NULL, 0, &out), PV_INVALID_ARGUMENT); /* empty id */
  CHECK_RC(pv_vault_get(vault, "notes", 5, "\xc3\x28", 2, &out), PV_INVALID_UTF8);
  CHECK_RC(pv_vault_get(vault, "no tes", 6, "MRN-4711", 8, &out), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_get(vault, "notes", SIZE_MAX, "MRN-4711", 8, &out), PV_LENGTH_TOO_LARGE);
  CHECK_RC(pv_vault_put(vault, "notes", 5, "MRN-1", 5, NULL, 3, NULL, 0), PV_NULL_ARGUMENT);
  CHECK(out == SENTINEL);

  /* Empty value (NULL, 0) is a value. */
  CHECK_OK(pv_vault_put(vault, "notes", 5, "MRN-empty", 9, NULL, 0, NULL, 0));
  CHECK_OK(pv_vault_get(vault, "notes", 5, "MRN-empty", 9, &out));
  CHECK(out != SENTINEL && pv_buffer_len(out) == 0);
  pv_buffer_free(out);
  out = SENTINEL;

  CHECK_OK(pv_vault_delete(vault, "notes", 5, "MRN-empty", 9, &deleted));
  CHECK(deleted);
  CHECK_OK(pv_vault_delete(vault, "notes", 5, "MRN-empty", 9, &deleted));
  CHECK(!deleted);
  CHECK_OK(pv_vault_delete(vault, "notes", 5, "MRN-empty", 9, NULL));
  CHECK_RC(pv_vault_get(vault, "notes", 5, "MRN-empty", 9, &out), PV_NOT_FOUND);

  /* Subjects: forgetting one makes its records unrecoverable. */
  bool existed = false;
  CHECK_OK(pv_vault_put(vault, "notes", 5, "MRN-5000", 8, (const uint8_t *)"x-ray", 5,
                        "patient-5000", 12));
  CHECK_OK(pv_vault_get(vault, "notes", 5, "MRN-5000", 8, &out));
  CHECK(buffer_equals(out, "x-ray", 5));
  pv_buffer_free(out);
  out = SENTINEL;
  CHECK_OK(pv_vault_forget_subject(vault, "patient-5000", 12, &existed));
  CHECK(existed);
  CHECK_RC(pv_vault_get(vault, "notes", 5, "MRN-5000", 8, &out), PV_SUBJECT_FORGOTTEN);
  CHECK_OK(pv_vault_forget_subject(vault, "patient-5000", 12, &existed));
  CHECK(!existed);
  CHECK_RC(pv_vault_forget_subject(vault, NULL, 0, &existed), PV_NULL_ARGUMENT);
  CHECK(out == SENTINEL);

  /* An envelope tied to a subject dies with it too, wherever it was copied. */
  pv_context *ctx = context2("record", "9", NULL, NULL);
  pv_buffer *env = NULL;
  CHECK_OK(pv_vault_encrypt_for_subject(vault, (const uint8_t *)"lab", 3, ctx, "patient-9", 9,
                                        PV_ENCRYPT_TEXT, &env));
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(env), pv_buffer_len(env), ctx, &out));
  CHECK(buffer_equals(out, "lab", 3));
  pv_buffer_free(out);
  out = SENTINEL;
  CHECK_OK(pv_vault_forget_subject(vault, "patient-9", 9, NULL));
  CHECK_RC(pv_vault_decrypt(vault, pv_buffer_data(env), pv_buffer_len(env), ctx, &out),
           PV_SUBJECT_FORGOTTEN);
  pv_buffer_free(env);
  pv_context_free(ctx);
}

static void test_keyrings(const pv_vault *vault) {
  pv_context *ctx = context2("field", "dx", NULL, NULL);
  pv_buffer *old_env = NULL, *new_env = NULL, *out = NULL;
  uint32_t version = 0;

  CHECK_OK(pv_vault_encrypt(vault, (const uint8_t *)"E11.9", 5, ctx, &old_env));
  CHECK_OK(pv_vault_rotate(vault, NULL, 0, &version));
  CHECK(version == 2);
  CHECK_OK(pv_vault_encrypt_text(vault, (const uint8_t *)"E11.9", 5, ctx, &new_env));
  CHECK(strncmp((const char *)pv_buffer_data(new_env), "pv1:default:2:", 14) == 0);
  /* Old versions stay decrypt-only. */
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(old_env), pv_buffer_len(old_env), ctx, &out));
  CHECK(buffer_equals(out, "E11.9", 5));
  pv_buffer_free(out);

  version = 777;
  CHECK_RC(pv_vault_rotate(vault, "missing", 7, &version), PV_UNKNOWN_KEYRING);
  CHECK(version == 777);
  CHECK_OK(pv_vault_rotate(vault, "default", 7, NULL));

  CHECK_OK(pv_vault_create_keyring(vault, "billing", 7));
  CHECK_RC(pv_vault_create_keyring(vault, "billing", 7), PV_KEYRING_EXISTS);
  CHECK_RC(pv_vault_create_keyring(vault, "bad name!", 9), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_create_keyring(vault, NULL, 0), PV_INVALID_ARGUMENT);
  pv_buffer *b = NULL;
  CHECK_OK(pv_vault_encrypt_with(vault, (const uint8_t *)"42", 2, ctx, "billing", 7,
                                 PV_ENCRYPT_TEXT, &b));
  CHECK(strncmp((const char *)pv_buffer_data(b), "pv1:billing:1:", 14) == 0);
  pv_buffer_free(b);

  pv_buffer *json = NULL;
  CHECK_OK(pv_vault_status_json(vault, &json));
  const char *j = (const char *)pv_buffer_data(json);
  CHECK(j[0] == '{' && strstr(j, "\"keyrings\"") != NULL && strstr(j, "billing") != NULL);
  CHECK(strstr(j, "chest pain") == NULL && strstr(j, "MRN-4711") == NULL);
  pv_buffer_free(json);
  CHECK_RC(pv_vault_status_json(vault, NULL), PV_NULL_ARGUMENT);

  pv_buffer_free(old_env);
  pv_buffer_free(new_env);
  pv_context_free(ctx);
}

static void test_lifecycle(const pv_vault *vault) {
  pv_context *ctx = context2("field", "lab", NULL, NULL);
  pv_buffer *old = NULL, *det = NULL, *fresh = NULL, *re = NULL, *out = NULL, *report = NULL;
  const uint8_t *lab = (const uint8_t *)"K+ 4.1";
  uint32_t v = 0;

  CHECK_OK(pv_vault_encrypt(vault, lab, 6, ctx, &old));
  CHECK_OK(pv_vault_encrypt_with(vault, lab, 6, ctx, NULL, 0, PV_ENCRYPT_DETERMINISTIC, &det));
  CHECK_OK(pv_vault_rotate(vault, NULL, 0, &v));

  /* Rewrap of stored records: a JSON report, idempotent. */
  CHECK_OK(pv_vault_rewrap(vault, NULL, 0, &report));
  CHECK(report != NULL && strstr((const char *)pv_buffer_data(report), "\"rewrapped\"") != NULL);
  pv_buffer_free(report);
  CHECK_OK(pv_vault_rewrap(vault, "default", 7, NULL));
  CHECK_RC(pv_vault_rewrap(vault, "missing", 7, NULL), PV_UNKNOWN_KEYRING);

  /* Rewrap of an envelope kept outside: new bytes, same plaintext and context. */
  CHECK_OK(pv_vault_rewrap_envelope(vault, pv_buffer_data(old), pv_buffer_len(old), &fresh));
  CHECK(!buffer_equals(fresh, pv_buffer_data(old), pv_buffer_len(old)));
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(fresh), pv_buffer_len(fresh), ctx, &out));
  CHECK(buffer_equals(out, lab, 6));
  pv_buffer_free(out);
  out = SENTINEL;
  CHECK_RC(pv_vault_rewrap_envelope(vault, pv_buffer_data(det), pv_buffer_len(det), &out),
           PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_rewrap_envelope(vault, pv_buffer_data(old), 5, &out),
           PV_AUTHENTICATION_FAILED);
  CHECK_RC(pv_vault_rewrap_envelope(vault, NULL, 5, &out), PV_NULL_ARGUMENT);
  CHECK(out == SENTINEL);
  CHECK_OK(pv_vault_reencrypt(vault, pv_buffer_data(det), pv_buffer_len(det), ctx, &re));
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(re), pv_buffer_len(re), ctx, &out));
  CHECK(buffer_equals(out, lab, 6));
  pv_buffer_free(out);
  out = SENTINEL;

  /* Retire (reversible), then destroy (irreversible). */
  CHECK_OK(pv_vault_set_min_decryption_version(vault, "default", 7, v));
  CHECK_RC(pv_vault_decrypt(vault, pv_buffer_data(old), pv_buffer_len(old), ctx, &out),
           PV_KEY_RETIRED);
  CHECK_OK(pv_vault_decrypt(vault, pv_buffer_data(fresh), pv_buffer_len(fresh), ctx, &out));
  pv_buffer_free(out);
  out = SENTINEL;
  CHECK_RC(pv_vault_destroy_key_version(vault, "default", 7, v, false), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_destroy_key_version(vault, "default", 7, 99, false),
           PV_UNKNOWN_KEY_VERSION);
  CHECK_OK(pv_vault_destroy_key_version(vault, "default", 7, v - 1, false));
  CHECK_OK(pv_vault_set_min_decryption_version(vault, "default", 7, 1));
  CHECK_RC(pv_vault_decrypt(vault, pv_buffer_data(old), pv_buffer_len(old), ctx, &out),
           PV_KEY_DESTROYED);
  CHECK(out == SENTINEL);

  /* A version that still protects a record is refused unless forced. */
  uint32_t w = 0;
  CHECK_OK(pv_vault_put(vault, "notes", 5, "MRN-inuse", 9, lab, 6, NULL, 0));
  CHECK_OK(pv_vault_rotate(vault, NULL, 0, &w));
  CHECK(w == v + 1);
  CHECK_RC(pv_vault_destroy_key_version(vault, "default", 7, v, false), PV_KEY_IN_USE);
  CHECK_OK(pv_vault_rewrap(vault, NULL, 0, NULL));
  CHECK_OK(pv_vault_destroy_key_version(vault, "default", 7, v, false));
  CHECK_OK(pv_vault_get(vault, "notes", 5, "MRN-inuse", 9, &out));
  CHECK(out != SENTINEL && buffer_equals(out, lab, 6));
  pv_buffer_free(out);

  pv_buffer_free(old);
  pv_buffer_free(det);
  pv_buffer_free(fresh);
  pv_buffer_free(re);
  pv_context_free(ctx);
}

static void test_close_and_reopen(pv_vault *vault, const char *path) {
  pv_buffer *out = SENTINEL;
  pv_context *ctx = context2("k", "v", NULL, NULL);

  /* Double close is defined: the second returns PV_VAULT_CLOSED. */
  CHECK_OK(pv_vault_close(vault));
  CHECK_RC(pv_vault_close(vault), PV_VAULT_CLOSED);
  CHECK_RC(pv_vault_close(NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt(vault, (const uint8_t *)"x", 1, ctx, &out), PV_VAULT_CLOSED);
  CHECK_RC(pv_vault_get(vault, "notes", 5, "MRN-4711", 8, &out), PV_VAULT_CLOSED);
  CHECK(out == SENTINEL);
  pv_vault_free(vault);

  /* The lock is released; data persisted; wrong keys are refused. */
  pv_root_key *wrong = root_from(key_b);
  pv_vault *v2 = SENTINEL;
  CHECK_RC(pv_vault_open(path, strlen(path), wrong, &v2), PV_WRONG_ROOT_KEY);
  pv_root_key_free(wrong);
  pv_root_key *pass = NULL;
  CHECK_OK(pv_root_key_from_passphrase("correct horse", 13, NULL, &pass));
  CHECK_RC(pv_vault_open(path, strlen(path), pass, &v2), PV_ROOT_KIND_MISMATCH);
  CHECK(v2 == SENTINEL);

  pv_root_key *root = root_from(key_a);
  CHECK_OK(pv_vault_open(path, strlen(path), root, &v2));
  CHECK_OK(pv_vault_get(v2, "notes", 5, "MRN-4711", 8, &out));
  CHECK(out != SENTINEL && buffer_equals(out, "Patient reports chest pain", 26));
  pv_buffer_free(out);

  /* Root rotation: afterwards only the new root opens the vault. */
  pv_root_key *new_root = root_from(key_b);
  CHECK_OK(pv_vault_rotate_root(v2, new_root));
  CHECK_RC(pv_vault_rotate_root(v2, NULL), PV_NULL_ARGUMENT);
  pv_vault_free(v2); /* free without close also closes */
  v2 = NULL;
  CHECK_RC(pv_vault_open(path, strlen(path), root, &v2), PV_WRONG_ROOT_KEY);
  CHECK_OK(pv_vault_open(path, strlen(path), new_root, &v2));
  pv_vault_free(v2);

  pv_root_key_free(pass);
  pv_root_key_free(root);
  pv_root_key_free(new_root);
  pv_context_free(ctx);
}

static void test_passphrase_vault(void) {
  char path[4096];
  pv_test_path(path, sizeof path, scratch, "pass.vault");
  /* Cheap Argon2 costs for a test only; NULL means the RFC 9106 defaults. */
  const pv_argon2_config cheap = {8192, 1, 1};
  const pv_argon2_config too_small = {1, 1, 1};
  pv_root_key *root = NULL, *weak = NULL, *wrong = NULL;
  pv_vault *vault = SENTINEL;

  CHECK_OK(pv_root_key_from_passphrase("tiny", 4, &too_small, &weak));
  CHECK_RC(pv_vault_create(path, strlen(path), weak, &vault), PV_INVALID_ARGUMENT);
  CHECK(vault == SENTINEL);
  pv_root_key_free(weak);

  CHECK_OK(pv_root_key_from_passphrase("correct horse battery staple", 28, &cheap, &root));
  CHECK_OK(pv_vault_create(path, strlen(path), root, &vault));
  CHECK_OK(pv_vault_put(vault, "notes", 5, "MRN-1", 5, (const uint8_t *)"ok", 2, NULL, 0));
  pv_vault_free(vault);

  CHECK_OK(pv_root_key_from_passphrase("correct horse battery stapler", 29, NULL, &wrong));
  vault = SENTINEL;
  CHECK_RC(pv_vault_open(path, strlen(path), wrong, &vault), PV_WRONG_ROOT_KEY);
  CHECK(vault == SENTINEL);
  CHECK_OK(pv_vault_open(path, strlen(path), root, &vault));
  pv_buffer *out = NULL;
  CHECK_OK(pv_vault_get(vault, "notes", 5, "MRN-1", 5, &out));
  CHECK(buffer_equals(out, "ok", 2));
  pv_buffer_free(out);
  pv_vault_free(vault);
  pv_root_key_free(root);
  pv_root_key_free(wrong);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  scratch = argv[1];
  char path[4096];
  pv_test_path(path, sizeof path, scratch, "api.vault");

  test_messages_and_frees();
  test_keys();
  test_context();
  pv_vault *vault = test_create_open(path);
  if (vault != NULL && vault != SENTINEL) {
    test_encrypt_decrypt(vault);
    test_records(vault);
    test_keyrings(vault);
    test_lifecycle(vault);
    test_close_and_reopen(vault, path);
  }
  test_passphrase_vault();
  return pv_test_finish("test_api");
}
