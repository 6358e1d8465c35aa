/*
 * De-identification through the C API: a FHIR Patient by the safe-harbor preset (names gone,
 * birth date cut to the year, SSN tokenized, id pseudonymized), re-identification as the
 * owner, a session denied re-identification, a stored schema, and bad input (NULL pointers,
 * invalid JSON never echoed, invalid UTF-8, an unknown schema, a schema error).
 *
 * Usage: test_deid SCRATCH_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "pv_test.h"

static const char *PATIENT =
    "{\"resourceType\":\"Patient\",\"id\":\"pc-0001\",\"gender\":\"male\","
    "\"identifier\":[{\"system\":\"http://hl7.org/fhir/sid/us-ssn\",\"value\":\"900-66-0001\"}],"
    "\"name\":[{\"family\":\"Cecanary\"}],\"birthDate\":\"1980-02-03\"}";

static const char *POLICY =
    "[[principal]]\nname = \"analyst\"\nroles = [\"research\"]\n"
    "[[rule]]\nroles = [\"research\"]\npurposes = [\"research\"]\n"
    "actions = [\"tokenize\"]\nfields = [\"identifier\", \"pseudonym\"]\n";

static int contains(const pv_buffer *b, const char *needle) {
  return b != NULL && strstr((const char *)pv_buffer_data(b), needle) != NULL;
}

static void test_round_trip(const pv_vault *vault) {
  pv_buffer *deid = NULL, *back = NULL;
  CHECK_OK(pv_vault_deidentify(vault, "safe-harbor", 11, PATIENT, strlen(PATIENT), &deid));
  CHECK(deid != NULL);
  CHECK(!contains(deid, "Cecanary") && !contains(deid, "900-66-0001") &&
        !contains(deid, "pc-0001") && !contains(deid, "1980-02-03"));
  CHECK(contains(deid, "\"birthDate\":\"1980\"") && contains(deid, "\"gender\":\"male\""));
  CHECK(contains(deid, "\"id\":\"psn-") && contains(deid, "PSEUDED"));
  if (deid == NULL) return;
  const char *d = (const char *)pv_buffer_data(deid);
  CHECK_OK(pv_vault_reidentify(vault, "safe-harbor", 11, d, pv_buffer_len(deid),
                               PV_VIEW_PLAINTEXT, &back));
  CHECK(contains(back, "900-66-0001"));
  pv_buffer_free(back);

  /* An analyst may de-identify but not re-identify: PV_ACCESS_DENIED, logged. */
  pv_session *analyst = NULL;
  pv_buffer *again = NULL, *denied = NULL;
  CHECK_OK(pv_vault_set_policy_toml(vault, POLICY, strlen(POLICY)));
  CHECK_OK(pv_session_new(vault, "analyst", 7, "research", 8, &analyst));
  CHECK_OK(pv_session_deidentify(analyst, "safe-harbor", 11, PATIENT, strlen(PATIENT), &again));
  CHECK(again != NULL && pv_buffer_len(again) == pv_buffer_len(deid));
  CHECK_RC(pv_session_reidentify(analyst, "safe-harbor", 11, d, pv_buffer_len(deid),
                                 PV_VIEW_PLAINTEXT, &denied),
           PV_ACCESS_DENIED);
  CHECK(denied == NULL);
  pv_buffer_free(again);
  pv_session_free(analyst);
  pv_buffer_free(deid);
}

static void test_stored_schema(const pv_vault *vault) {
  const char *schema =
      "default = \"redact\"\n[[rule]]\npath = \"Patient.gender\"\naction = \"keep\"\n";
  pv_buffer *out = NULL;
  CHECK_OK(pv_vault_define_schema(vault, "genders", 7, schema, strlen(schema)));
  CHECK_OK(pv_vault_deidentify(vault, "genders", 7, PATIENT, strlen(PATIENT), &out));
  CHECK(out != NULL && strcmp((const char *)pv_buffer_data(out),
                              "{\"gender\":\"male\",\"resourceType\":\"Patient\"}") == 0);
  pv_buffer_free(out);
  /* Schema text works too; a schema error names the rule. */
  out = NULL;
  CHECK_OK(pv_vault_deidentify(vault, schema, strlen(schema), PATIENT, strlen(PATIENT), &out));
  pv_buffer_free(out);
  const char *bad = "[[rule]]\npath = \"Patient..x\"\naction = \"keep\"\n";
  CHECK_RC(pv_vault_define_schema(vault, "bad", 3, bad, strlen(bad)), PV_INVALID_ARGUMENT);
  char msg[512];
  size_t n = 0;
  CHECK_OK(pv_last_error_message(msg, sizeof msg, &n));
  CHECK(strstr(msg, "rule 1") != NULL);
}

static void test_bad_input(const pv_vault *vault) {
  pv_buffer *out = NULL;
  const char *broken = "{\"resourceType\":\"Patient\",\"id\":\"SECRET-4711\"";
  CHECK_RC(pv_vault_deidentify(vault, "safe-harbor", 11, broken, strlen(broken), &out),
           PV_INVALID_ARGUMENT);
  char msg[512];
  size_t n = 0;
  CHECK_OK(pv_last_error_message(msg, sizeof msg, &n));
  CHECK(strstr(msg, "SECRET") == NULL);
  CHECK(out == NULL);
  CHECK_RC(pv_vault_deidentify(vault, "safe-harbor", 11, NULL, 5, &out), PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_deidentify(vault, "safe-harbor", 11, PATIENT, strlen(PATIENT), NULL),
           PV_NULL_ARGUMENT);
  CHECK_RC(pv_vault_deidentify(NULL, "safe-harbor", 11, PATIENT, strlen(PATIENT), &out),
           PV_NULL_ARGUMENT);
  const char bad_utf8[] = {'{', '"', (char)0xff, '"', '}'};
  CHECK_RC(pv_vault_deidentify(vault, "safe-harbor", 11, bad_utf8, sizeof bad_utf8, &out),
           PV_INVALID_UTF8);
  CHECK_RC(pv_vault_deidentify(vault, "no-such", 7, PATIENT, strlen(PATIENT), &out),
           PV_INVALID_ARGUMENT);
  CHECK_RC(pv_vault_reidentify(vault, "safe-harbor", 11, PATIENT, strlen(PATIENT), 9, &out),
           PV_INVALID_ARGUMENT);
  CHECK(out == NULL);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  char path[4096];
  pv_test_path(path, sizeof path, argv[1], "deid.vault");
  uint8_t key[PV_KEY_LEN];
  pv_root_key *root = NULL;
  pv_vault *vault = NULL;
  CHECK_OK(pv_key_generate(key, sizeof key));
  CHECK_OK(pv_root_key_from_bytes(key, sizeof key, &root));
  CHECK_OK(pv_vault_create(path, strlen(path), root, &vault));
  pv_root_key_free(root);
  if (vault != NULL) {
    test_bad_input(vault);
    test_stored_schema(vault);
    test_round_trip(vault);
  }
  pv_vault_free(vault);
  return pv_test_finish("test_deid");
}
