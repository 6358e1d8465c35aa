/*
 * Streaming encryption of files by path (pv_vault_encrypt_file / pv_vault_decrypt_file):
 * a round trip of a few hundred KiB (several 64 KiB segments, with and without a context, tied
 * to a subject), a file truncated at a segment boundary or by one byte refused with
 * PV_AUTHENTICATION_FAILED and leaving no output, a wrong context refused the same way, NULL
 * and empty paths, a missing input file, and a closed vault.
 *
 * Usage: test_stream SCRATCH_DIR   (an empty, writable directory)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <unistd.h>

#include "pv_test.h"

/* 300 KiB: four full 64 KiB segments and a partial fifth. */
#define PLAIN_LEN (300u * 1024u)
#define SEGMENT 65536u
#define TAG 16u

static const char *scratch;

static void scratch_path(char *out, size_t out_len, const char *name) {
  pv_test_path(out, out_len, scratch, name);
}

static int write_file(const char *path, const uint8_t *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) return 0;
  size_t n = len == 0 ? 0 : fwrite(data, 1, len, f);
  return fclose(f) == 0 && n == len;
}

/* Reads a whole file into a malloc'd buffer (caller frees); NULL on failure. */
static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  if (fseek(f, 0, SEEK_END) != 0) {
    fclose(f);
    return NULL;
  }
  long size = ftell(f);
  rewind(f);
  uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
  if (buf == NULL || size < 0 || fread(buf, 1, (size_t)size, f) != (size_t)size) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *len = (size_t)size;
  return buf;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static int file_equals(const char *path, const uint8_t *data, size_t len) {
  size_t got_len = 0;
  uint8_t *got = read_file(path, &got_len);
  int eq = got != NULL && got_len == len && (len == 0 || memcmp(got, data, len) == 0);
  free(got);
  return eq;
}

static pv_context *context1(const char *k, const char *v) {
  pv_context *ctx = NULL;
  CHECK_OK(pv_context_new(&ctx));
  CHECK_OK(pv_context_add(ctx, k, strlen(k), v, strlen(v)));
  return ctx;
}

/* Path length helper for the pointer + length convention. */
#define P(s) (s), strlen(s)

static void test_round_trip(pv_vault *vault, const uint8_t *plain) {
  char in[4096], enc[4096], dec[4096], partial[4096];
  scratch_path(in, sizeof in, "scan.dcm");
  scratch_path(enc, sizeof enc, "scan.dcm.pvs");
  scratch_path(dec, sizeof dec, "scan.out");
  scratch_path(partial, sizeof partial, "scan.dcm.pvs.partial");
  CHECK(write_file(in, plain, PLAIN_LEN));

  pv_context *ctx = context1("study", "1.2.840.1");
  CHECK_OK(pv_vault_encrypt_file(vault, P(in), P(enc), ctx, NULL, 0));
  CHECK(exists(enc) && !exists(partial));
  size_t ct_len = 0;
  uint8_t *ct = read_file(enc, &ct_len);
  CHECK(ct != NULL && ct_len > PLAIN_LEN + 5 * TAG);
  free(ct);
  CHECK_OK(pv_vault_decrypt_file(vault, P(enc), P(dec), ctx));
  CHECK(file_equals(dec, plain, PLAIN_LEN));

  /* Wrong context and no context: refused, nothing written. */
  char dec2[4096];
  scratch_path(dec2, sizeof dec2, "scan.wrong");
  pv_context *wrong = context1("study", "1.2.840.2");
  CHECK_RC(pv_vault_decrypt_file(vault, P(enc), P(dec2), wrong), PV_AUTHENTICATION_FAILED);
  CHECK(!exists(dec2));
  CHECK_RC(pv_vault_decrypt_file(vault, P(enc), P(dec2), NULL), PV_AUTHENTICATION_FAILED);
  CHECK(!exists(dec2));
  pv_context_free(wrong);

  /* NULL context is the empty context, on both sides. */
  CHECK_OK(pv_vault_encrypt_file(vault, P(in), P(enc), NULL, NULL, 0));
  CHECK_RC(pv_vault_decrypt_file(vault, P(enc), P(dec2), ctx), PV_AUTHENTICATION_FAILED);
  CHECK_OK(pv_vault_decrypt_file(vault, P(enc), P(dec2), NULL));
  CHECK(file_equals(dec2, plain, PLAIN_LEN));

  /* Tied to a subject: round trip, then dead after forget_subject. */
  CHECK_OK(pv_vault_encrypt_file(vault, P(in), P(enc), ctx, "patient-7", 9));
  CHECK_OK(pv_vault_decrypt_file(vault, P(enc), P(dec2), ctx));
  CHECK(file_equals(dec2, plain, PLAIN_LEN));
  CHECK_OK(pv_vault_forget_subject(vault, "patient-7", 9, NULL));
  CHECK(unlink(dec2) == 0);
  CHECK_RC(pv_vault_decrypt_file(vault, P(enc), P(dec2), ctx), PV_SUBJECT_FORGOTTEN);
  CHECK(!exists(dec2));

  /* Empty file. */
  char empty_in[4096], empty_enc[4096], empty_dec[4096];
  scratch_path(empty_in, sizeof empty_in, "empty");
  scratch_path(empty_enc, sizeof empty_enc, "empty.pvs");
  scratch_path(empty_dec, sizeof empty_dec, "empty.out");
  CHECK(write_file(empty_in, NULL, 0));
  CHECK_OK(pv_vault_encrypt_file(vault, P(empty_in), P(empty_enc), ctx, NULL, 0));
  CHECK_OK(pv_vault_decrypt_file(vault, P(empty_enc), P(empty_dec), ctx));
  CHECK(exists(empty_dec) && file_equals(empty_dec, NULL, 0));
  pv_context_free(ctx);
}

static void test_truncation(pv_vault *vault, const uint8_t *plain) {
  char in[4096], enc[4096], cut[4096], dec[4096], partial[4096];
  scratch_path(in, sizeof in, "slide.svs");
  scratch_path(enc, sizeof enc, "slide.svs.pvs");
  scratch_path(cut, sizeof cut, "slide.cut.pvs");
  scratch_path(dec, sizeof dec, "slide.out");
  scratch_path(partial, sizeof partial, "slide.out.partial");
  CHECK(write_file(in, plain, PLAIN_LEN));
  pv_context *ctx = context1("slide", "S-1");
  CHECK_OK(pv_vault_encrypt_file(vault, P(in), P(enc), ctx, NULL, 0));
  size_t ct_len = 0;
  uint8_t *ct = read_file(enc, &ct_len);
  CHECK(ct != NULL);
  if (ct != NULL) {
    /* Cut the final segment off: the file now ends exactly at a segment boundary. */
    size_t last = PLAIN_LEN % SEGMENT + TAG;
    size_t cuts[3] = {ct_len - last, ct_len - 1, ct_len - last - (SEGMENT + TAG)};
    for (size_t i = 0; i < 3; i++) {
      CHECK(write_file(cut, ct, cuts[i]));
      CHECK_RC(pv_vault_decrypt_file(vault, P(cut), P(dec), ctx), PV_AUTHENTICATION_FAILED);
      CHECK(!exists(dec) && !exists(partial));
    }
    /* One flipped bit in the middle. */
    ct[ct_len / 2] ^= 0x01;
    CHECK(write_file(cut, ct, ct_len));
    CHECK_RC(pv_vault_decrypt_file(vault, P(cut), P(dec), ctx), PV_AUTHENTICATION_FAILED);
    CHECK(!exists(dec) && !exists(partial));
    /* Appended bytes (extension). */
    ct[ct_len / 2] ^= 0x01;
    CHECK(write_file(cut, ct, ct_len));
    FILE *f = fopen(cut, "ab");
    CHECK(f != NULL);
    if (f != NULL) {
      fputc(0, f);
      fclose(f);
    }
    CHECK_RC(pv_vault_decrypt_file(vault, P(cut), P(dec), ctx), PV_AUTHENTICATION_FAILED);
    CHECK(!exists(dec));
    /* The untouched file still decrypts. */
    CHECK_OK(pv_vault_decrypt_file(vault, P(enc), P(dec), ctx));
    CHECK(file_equals(dec, plain, PLAIN_LEN));
    free(ct);
  }
  pv_context_free(ctx);
}

static void test_bad_arguments(pv_vault *vault) {
  char in[4096], out[4096], missing[4096];
  scratch_path(in, sizeof in, "args.in");
  scratch_path(out, sizeof out, "args.out");
  scratch_path(missing, sizeof missing, "no-such-file");
  CHECK(write_file(in, (const uint8_t *)"x", 1));
  CHECK_RC(pv_vault_encrypt_file(NULL, P(in), P(out), NULL, NULL, 0), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_file(vault, NULL, 0, P(out), NULL, NULL, 0), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_file(vault, NULL, 5, P(out), NULL, NULL, 0), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_file(vault, P(in), NULL, 0, NULL, NULL, 0), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_file(vault, in, 0, P(out), NULL, NULL, 0), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_file(vault, P(in), P(out), NULL, NULL, 3), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_encrypt_file(vault, P(in), P(out), NULL, "\xff", 1), PV_INVALID_UTF8);
  CHECK_RC(pv_vault_decrypt_file(NULL, P(in), P(out), NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_decrypt_file(vault, NULL, 0, P(out), NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_decrypt_file(vault, P(in), NULL, 0, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_decrypt_file(vault, P(in), out, 0, NULL), PV_INVALID_ARGUMENT);
  CHECK(!exists(out));
  /* A missing input is an I/O error; a file that is not a stream is refused. */
  CHECK_RC(pv_vault_encrypt_file(vault, P(missing), P(out), NULL, NULL, 0), PV_IO_ERROR);
  CHECK_RC(pv_vault_decrypt_file(vault, P(missing), P(out), NULL), PV_IO_ERROR);
  CHECK(pv_vault_decrypt_file(vault, P(in), P(out), NULL) != PV_OK);
  CHECK(!exists(out));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  scratch = argv[1];
  uint8_t *plain = malloc(PLAIN_LEN);
  if (plain == NULL) return 2;
  uint32_t x = 2463534242u; /* xorshift32: incompressible, reproducible */
  for (size_t i = 0; i < PLAIN_LEN; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    plain[i] = (uint8_t)x;
  }
  char path[4096];
  pv_test_path(path, sizeof path, scratch, "stream.vault");
  uint8_t key[PV_KEY_LEN];
  pv_root_key *root = NULL;
  pv_vault *vault = NULL;
  CHECK_OK(pv_key_generate(key, sizeof key));
  CHECK_OK(pv_root_key_from_bytes(key, sizeof key, &root));
  CHECK_OK(pv_vault_create(path, strlen(path), root, &vault));
  pv_root_key_free(root);
  if (vault != NULL) {
    test_round_trip(vault, plain);
    test_truncation(vault, plain);
    test_bad_arguments(vault);
    /* A closed vault. */
    char in[4096], out[4096];
    scratch_path(in, sizeof in, "scan.dcm");
    scratch_path(out, sizeof out, "closed.out");
    CHECK_OK(pv_vault_close(vault));
    CHECK_RC(pv_vault_encrypt_file(vault, P(in), P(out), NULL, NULL, 0), PV_VAULT_CLOSED);
    CHECK(!exists(out));
  }
  pv_vault_free(vault);
  free(plain);
  return pv_test_finish("test_stream");
}
