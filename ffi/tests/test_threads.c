/*
 * One vault handle shared by several pthreads: concurrent encrypt/decrypt, record writes and
 * reads, and key rotation; then pv_vault_close racing with calls in flight, which must each
 * either succeed or return PV_VAULT_CLOSED.
 *
 * Usage: test_threads SCRATCH_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>
#include <stdint.h>

#include "pv_test.h"

#define WORKERS 6
#define ROUNDS 40

struct worker {
  const pv_vault *vault;
  int index;
  int ok;        /* round trips that returned the right bytes */
  int failures;  /* calls that failed or returned wrong bytes */
  int closed;    /* calls that saw PV_VAULT_CLOSED (phase 2) */
  int other;     /* any other status in phase 2 */
};

static void *work(void *arg) {
  struct worker *w = arg;
  char id[32], value[64];
  pv_context *ctx = NULL;
  if (pv_context_new(&ctx) != PV_OK) {
    w->failures++;
    return NULL;
  }
  snprintf(id, sizeof id, "%d", w->index);
  if (pv_context_add(ctx, "thread", 6, id, strlen(id)) != PV_OK) w->failures++;

  for (int r = 0; r < ROUNDS; r++) {
    snprintf(value, sizeof value, "thread %d round %d", w->index, r);
    size_t len = strlen(value);
    pv_buffer *env = NULL, *plain = NULL;
    if (pv_vault_encrypt(w->vault, (const uint8_t *)value, len, ctx, &env) != PV_OK ||
        pv_vault_decrypt(w->vault, pv_buffer_data(env), pv_buffer_len(env), ctx, &plain) !=
            PV_OK ||
        pv_buffer_len(plain) != len || memcmp(pv_buffer_data(plain), value, len) != 0) {
      w->failures++;
    } else {
      w->ok++;
    }
    pv_buffer_free(env);
    pv_buffer_free(plain);

    snprintf(id, sizeof id, "T%d-R%d", w->index, r);
    pv_buffer *got = NULL;
    if (pv_vault_put(w->vault, "notes", 5, id, strlen(id), (const uint8_t *)value, len, NULL,
                     0) != PV_OK ||
        pv_vault_get(w->vault, "notes", 5, id, strlen(id), &got) != PV_OK ||
        pv_buffer_len(got) != len || memcmp(pv_buffer_data(got), value, len) != 0) {
      w->failures++;
    } else {
      w->ok++;
    }
    pv_buffer_free(got);

    /* Worker 0 also rotates the default keyring now and then. */
    if (w->index == 0 && r % 10 == 0) {
      if (pv_vault_rotate(w->vault, NULL, 0, NULL) != PV_OK) w->failures++;
    }
  }
  pv_context_free(ctx);
  return NULL;
}

/* Phase 2: keep calling until the handle is closed under us. */
static void *work_until_closed(void *arg) {
  struct worker *w = arg;
  pv_context *ctx = NULL;
  if (pv_context_new(&ctx) != PV_OK) {
    w->failures++;
    return NULL;
  }
  /* Call until the close is seen; a close that never lands within a minute is a failure
     (counted in neither `closed` nor `other`, so the CHECKs below catch it). */
  time_t give_up = time(NULL) + 60;
  while (time(NULL) < give_up) {
    pv_buffer *env = NULL;
    pv_result rc = pv_vault_encrypt(w->vault, (const uint8_t *)"x", 1, ctx, &env);
    if (rc == PV_OK) {
      w->ok++;
      pv_buffer_free(env);
    } else if (rc == PV_VAULT_CLOSED) {
      w->closed++;
      break;
    } else {
      w->other++;
      break;
    }
  }
  pv_context_free(ctx);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  char path[4096];
  pv_test_path(path, sizeof path, argv[1], "threads.vault");

  uint8_t key[PV_KEY_LEN];
  pv_root_key *root = NULL;
  pv_vault *vault = NULL;
  CHECK_OK(pv_key_generate(key, sizeof key));
  CHECK_OK(pv_root_key_from_bytes(key, sizeof key, &root));
  CHECK_OK(pv_vault_create(path, strlen(path), root, &vault));
  pv_root_key_free(root);
  if (vault == NULL) return pv_test_finish("test_threads");

  pthread_t threads[WORKERS];
  struct worker workers[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    workers[i] = (struct worker){vault, i, 0, 0, 0, 0};
    CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
  }
  int ok = 0, failures = 0;
  for (int i = 0; i < WORKERS; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
    ok += workers[i].ok;
    failures += workers[i].failures;
  }
  CHECK(failures == 0);
  CHECK(ok == WORKERS * ROUNDS * 2);

  /* Every record written by every thread is there afterwards. */
  int found = 0;
  for (int t = 0; t < WORKERS; t++) {
    for (int r = 0; r < ROUNDS; r++) {
      char id[32];
      snprintf(id, sizeof id, "T%d-R%d", t, r);
      pv_buffer *got = NULL;
      if (pv_vault_get(vault, "notes", 5, id, strlen(id), &got) == PV_OK) found++;
      pv_buffer_free(got);
    }
  }
  CHECK(found == WORKERS * ROUNDS);

  /* Each thread keeps its own last error. */
  pv_buffer *out = NULL;
  CHECK_RC(pv_vault_get(vault, "notes", 5, "missing", 7, &out), PV_NOT_FOUND);
  CHECK_RC(pv_last_error_code(), PV_NOT_FOUND);

  /* Phase 2: close while other threads are calling. */
  for (int i = 0; i < WORKERS; i++) {
    workers[i] = (struct worker){vault, i, 0, 0, 0, 0};
    CHECK(pthread_create(&threads[i], NULL, work_until_closed, &workers[i]) == 0);
  }
  CHECK_OK(pv_vault_close(vault));
  int closed = 0, other = 0;
  for (int i = 0; i < WORKERS; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
    closed += workers[i].closed;
    other += workers[i].other;
  }
  CHECK(closed == WORKERS); /* every thread ended by seeing the close */
  CHECK(other == 0);        /* and saw no other failure */
  CHECK_RC(pv_vault_close(vault), PV_VAULT_CLOSED);
  pv_vault_free(vault);
  return pv_test_finish("test_threads");
}
