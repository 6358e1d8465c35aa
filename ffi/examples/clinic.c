/*
 * clinic.c - embedding phivault in a C program: open (or create) a vault, store a patient
 * note, tokenize the patient's MRN, and read both back.
 *
 * Build and run (from the repository root, after `cargo build --release -p phivault-ffi`):
 *
 *   cc -std=c11 -Wall -Wextra -I ffi/include ffi/examples/clinic.c \
 *      -L target/release -lphivault -lpthread -ldl -lm -o clinic
 *   LD_LIBRARY_PATH=target/release ./clinic [VAULT_DIR] [KEY_FILE]
 *
 * or, with the pkg-config file installed: cc clinic.c $(pkg-config --cflags --libs phivault)
 *
 * VAULT_DIR defaults to ./clinic.vault and KEY_FILE to ./clinic.key. On the first run a new
 * 32-byte root key is written to KEY_FILE (mode 0600) and the vault is created. In production,
 * keep the root key apart from the vault (a secrets manager, an HSM, another volume).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "phivault.h"

/* Prints what failed: the status text and the library's detail (never PHI or key bytes). */
static int fail(const char *what, pv_result rc) {
  char text[128], detail[256];
  size_t n;
  pv_error_message(rc, text, sizeof text, &n);
  pv_last_error_message(detail, sizeof detail, &n);
  fprintf(stderr, "clinic: %s failed: %s (%u): %s\n", what, text, (unsigned)rc, detail);
  return 1;
}

/* Reads the 32-byte root key from path, or creates it there. Returns 0 on success. */
static int load_or_create_key(const char *path, uint8_t key[PV_KEY_LEN]) {
  int fd = open(path, O_RDONLY);
  if (fd >= 0) {
    ssize_t got = read(fd, key, PV_KEY_LEN);
    close(fd);
    if (got != PV_KEY_LEN) {
      fprintf(stderr, "clinic: %s does not hold a %d-byte key\n", path, PV_KEY_LEN);
      return 1;
    }
    return 0;
  }
  if (errno != ENOENT) {
    perror("clinic: opening the key file");
    return 1;
  }
  pv_result rc = pv_key_generate(key, PV_KEY_LEN);
  if (rc != PV_OK) return fail("generating a root key", rc);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || write(fd, key, PV_KEY_LEN) != PV_KEY_LEN || close(fd) != 0) {
    perror("clinic: writing the key file");
    return 1;
  }
  printf("created root key %s\n", path);
  return 0;
}

/* Opens the vault at path, creating it if there is none. */
static pv_result open_vault(const char *path, const pv_root_key *root, pv_vault **out) {
  pv_result rc = pv_vault_open(path, strlen(path), root, out);
  if (rc == PV_VAULT_NOT_FOUND) {
    rc = pv_vault_create(path, strlen(path), root, out);
    if (rc == PV_OK) printf("created vault %s\n", path);
  }
  return rc;
}

int main(int argc, char **argv) {
  const char *vault_dir = argc > 1 ? argv[1] : "clinic.vault";
  const char *key_file = argc > 2 ? argv[2] : "clinic.key";
  int status = 1;
  pv_result rc;
  pv_vault *vault = NULL;
  pv_buffer *token = NULL, *note_back = NULL, *mrn_back = NULL;

  /* 1. The root key: read it, hand it to the library, wipe our copy at once. */
  uint8_t key[PV_KEY_LEN];
  if (load_or_create_key(key_file, key) != 0) return 1;
  pv_root_key *root = NULL;
  rc = pv_root_key_from_bytes(key, sizeof key, &root);
  memset(key, 0, sizeof key); /* a real program would use explicit_bzero or memset_s */
  if (rc != PV_OK) return fail("reading the root key", rc);

  /* 2. Open the vault; the root key object is not needed after that. */
  rc = open_vault(vault_dir, root, &vault);
  pv_root_key_free(root);
  if (rc != PV_OK) return fail("opening the vault", rc);

  /* 3. Store a patient note as a record. The id (an MRN) is stored only as a keyed hash; the
   *    subject ties the note to the patient so pv_vault_forget_subject can erase it. */
  const char *mrn = "MRN-0004711";
  const char *note = "2024-05-02 Patient reports chest pain; ECG normal; HbA1c 9.2%";
  rc = pv_vault_put(vault, "notes", strlen("notes"), mrn, strlen(mrn), (const uint8_t *)note,
                    strlen(note), "patient-4711", strlen("patient-4711"));
  if (rc != PV_OK) {
    fail("storing the note", rc);
    goto done;
  }

  /* 4. A token for the MRN, for systems that must not see it (analytics, billing exports).
   *    "mrn" is a built-in vaulted field: the token is random, the MRN is kept encrypted in
   *    the vault, and the same MRN always gets the same token, so joins still work. */
  rc = pv_vault_tokenize(vault, "mrn", 3, mrn, strlen(mrn), NULL, 0, &token);
  if (rc != PV_OK) {
    fail("tokenizing the MRN", rc);
    goto done;
  }
  /* Tokens are text, NUL-terminated in the buffer. A token is not PHI: it may be printed. */
  printf("MRN token: %s\n", (const char *)pv_buffer_data(token));

  /* 5. Read both back. */
  rc = pv_vault_get(vault, "notes", strlen("notes"), mrn, strlen(mrn), &note_back);
  if (rc != PV_OK) {
    fail("reading the note", rc);
    goto done;
  }
  rc = pv_vault_detokenize(vault, "mrn", 3, (const char *)pv_buffer_data(token),
                           pv_buffer_len(token), NULL, 0, PV_VIEW_PLAINTEXT, &mrn_back);
  if (rc != PV_OK) {
    fail("detokenizing the MRN", rc);
    goto done;
  }
  if (pv_buffer_len(note_back) != strlen(note) ||
      memcmp(pv_buffer_data(note_back), note, strlen(note)) != 0 ||
      pv_buffer_len(mrn_back) != strlen(mrn) ||
      memcmp(pv_buffer_data(mrn_back), mrn, strlen(mrn)) != 0) {
    fprintf(stderr, "clinic: read back different data\n");
    goto done;
  }
  /* Never print or log the plaintexts themselves: they are PHI. */
  printf("note (%zu bytes) and MRN read back intact\n", pv_buffer_len(note_back));
  status = 0;

done:
  /* pv_buffer_free wipes plaintexts before freeing; every free accepts NULL. */
  pv_buffer_free(note_back);
  pv_buffer_free(mrn_back);
  pv_buffer_free(token);
  pv_vault_free(vault); /* closes the vault and releases its lock */
  return status;
}
