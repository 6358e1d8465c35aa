/*
 * Sessions (principal + purpose) through the C API: the policy allows and denies, views are
 * capped, break-the-glass, the audit chain verifies, and a session that outlives its vault
 * handle gets PV_VAULT_CLOSED rather than freed memory.
 *
 * Usage: test_session SCRATCH_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "pv_test.h"

static char sentinel_storage;
#define SENTINEL ((void *)&sentinel_storage)

static const char *POLICY =
    "[[principal]]\n"
    "name = \"analyst\"\n"
    "roles = [\"research\"]\n"
    "[[principal]]\n"
    "name = \"dr-grey\"\n"
    "roles = [\"clinician\"]\n"
    "[[rule]]\n"
    "roles = [\"research\"]\n"
    "purposes = [\"research\"]\n"
    "actions = [\"tokenize\", \"detokenize\"]\n"
    "fields = [\"ssn\"]\n"
    "view = \"masked\"\n"
    "[[break_glass]]\n"
    "roles = [\"clinician\"]\n";

static int text_is(const pv_buffer *buf, const char *want) {
  return buf != NULL && buf != SENTINEL && pv_buffer_len(buf) == strlen(want) &&
         strcmp((const char *)pv_buffer_data(buf), want) == 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  char path[4096];
  pv_test_path(path, sizeof path, argv[1], "session.vault");
  uint8_t key[PV_KEY_LEN];
  pv_root_key *root = NULL;
  pv_vault *vault = NULL;
  CHECK_OK(pv_key_generate(key, sizeof key));
  CHECK_OK(pv_root_key_from_bytes(key, sizeof key, &root));
  CHECK_OK(pv_vault_create(path, strlen(path), root, &vault));
  pv_root_key_free(root);
  if (vault == NULL) return pv_test_finish("test_session");

  /* The owner stores data and sets the policy. */
  const char *note = "chest pain";
  pv_buffer *token = NULL;
  CHECK_OK(pv_vault_put(vault, "notes", 5, "MRN-1", 5, (const uint8_t *)note, strlen(note),
                        NULL, 0));
  CHECK_OK(pv_vault_tokenize(vault, "ssn", 3, "900-12-3456", 11, NULL, 0, &token));
  CHECK_OK(pv_vault_set_policy_toml(vault, POLICY, strlen(POLICY)));
  CHECK_RC(pv_vault_set_policy_toml(vault, "[[rule]]\nbogus = 1\n", 19), PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_set_policy_toml(vault, NULL, 3), PV_NULL_ARGUMENT);

  /* Session construction. */
  pv_session *analyst = SENTINEL;
  CHECK_RC(pv_session_new(NULL, "analyst", 7, "research", 8, &analyst), PV_NULL_ARGUMENT);
  CHECK_RC(pv_session_new(vault, "analyst", 7, "research", 8, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_session_new(vault, "\xff", 1, "research", 8, &analyst), PV_INVALID_UTF8);
  CHECK(analyst == SENTINEL);
  CHECK_OK(pv_session_new(vault, "analyst", 7, "research", 8, &analyst));
  pv_session_free(NULL);

  /* Granted: masked view of ssn. Denied: plaintext, records, other purposes. */
  const char *t = (const char *)pv_buffer_data(token);
  pv_buffer *out = NULL;
  CHECK_OK(pv_session_detokenize(analyst, "ssn", 3, t, strlen(t), NULL, 0, PV_VIEW_MASKED, &out));
  CHECK(text_is(out, "***-**-3456"));
  pv_buffer_free(out);
  out = SENTINEL;
  CHECK_RC(pv_session_detokenize(analyst, "ssn", 3, t, strlen(t), NULL, 0, PV_VIEW_PLAINTEXT,
                                 &out),
           PV_ACCESS_DENIED);
  CHECK_RC(pv_session_get(analyst, "notes", 5, "MRN-1", 5, &out), PV_ACCESS_DENIED);
  CHECK_RC(pv_session_put(analyst, "notes", 5, "MRN-2", 5, (const uint8_t *)"x", 1, NULL, 0),
           PV_ACCESS_DENIED);
  pv_context *ctx = NULL;
  CHECK_OK(pv_context_new(&ctx));
  CHECK_RC(pv_session_encrypt(analyst, (const uint8_t *)"x", 1, ctx, NULL, 0, 0, &out),
           PV_ACCESS_DENIED);
  CHECK_RC(pv_session_encrypt(analyst, (const uint8_t *)"x", 1, ctx, NULL, 0, 0x40, &out),
           PV_INVALID_ARGUMENT);
  CHECK(out == SENTINEL);
  char detail[256];
  size_t n = 0;
  CHECK_OK(pv_last_error_message(detail, sizeof detail, &n));
  pv_session *other = NULL;
  CHECK_OK(pv_session_new(vault, "analyst", 7, "marketing", 9, &other));
  CHECK_RC(pv_session_detokenize(other, "ssn", 3, t, strlen(t), NULL, 0, PV_VIEW_MASKED, &out),
           PV_ACCESS_DENIED);
  CHECK(out == SENTINEL);
  pv_session_free(other);

  /* Break-the-glass: denied without it, allowed with a reason for permitted roles. */
  pv_session *doctor = NULL;
  CHECK_OK(pv_session_new(vault, "dr-grey", 7, "treatment", 9, &doctor));
  CHECK_RC(pv_session_get(doctor, "notes", 5, "MRN-1", 5, &out), PV_ACCESS_DENIED);
  CHECK_RC(pv_session_break_glass(doctor, "", 0), PV_INVALID_ARGUMENT);
  CHECK_OK(pv_session_break_glass(doctor, "patient unconscious in ED", 25));
  CHECK_OK(pv_session_get(doctor, "notes", 5, "MRN-1", 5, &out));
  CHECK(out != SENTINEL && pv_buffer_len(out) == strlen(note));
  pv_buffer_free(out);
  out = SENTINEL;

  /* The audit chain verifies. */
  bool ok = false;
  pv_buffer *report = NULL;
  CHECK_OK(pv_vault_audit_verify(vault, &ok, &report));
  CHECK(ok);
  CHECK(report != NULL && strstr((const char *)pv_buffer_data(report), "\"entries\"") != NULL);
  CHECK(strstr((const char *)pv_buffer_data(report), "chest pain") == NULL);
  pv_buffer_free(report);
  CHECK_RC(pv_vault_audit_verify(vault, NULL, NULL), PV_NULL_ARGUMENT);
  ok = false;
  CHECK_OK(pv_vault_audit_verify(vault, &ok, NULL));
  CHECK(ok);

  /* The whole store verifies: counts per space, no PHI in the report. */
  ok = false;
  report = NULL;
  CHECK_OK(pv_vault_verify(vault, &ok, &report));
  CHECK(ok);
  CHECK(report != NULL && strstr((const char *)pv_buffer_data(report), "\"spaces\"") != NULL);
  CHECK(strstr((const char *)pv_buffer_data(report), "\"record\"") != NULL);
  CHECK(strstr((const char *)pv_buffer_data(report), "chest pain") == NULL);
  pv_buffer_free(report);
  CHECK_RC(pv_vault_verify(vault, NULL, NULL), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_verify(NULL, &ok, NULL), PV_NULL_ARGUMENT);

  /* A session may outlive its vault handle: its calls then see PV_VAULT_CLOSED. */
  pv_vault_free(vault);
  CHECK_RC(pv_session_detokenize(analyst, "ssn", 3, t, strlen(t), NULL, 0, PV_VIEW_MASKED, &out),
           PV_VAULT_CLOSED);
  CHECK_RC(pv_session_get(doctor, "notes", 5, "MRN-1", 5, &out), PV_VAULT_CLOSED);
  CHECK(out == SENTINEL);
  pv_session_free(analyst);
  pv_session_free(doctor);
  pv_context_free(ctx);
  pv_buffer_free(token);
  return pv_test_finish("test_session");
}
