/* For bench/malloc_study.sh only: LD_PRELOADed into `phonon serve` to try
 * glibc with malloc_trim(0) without changing Phonon. A thread calls
 * malloc_trim(0) every PHONON_TRIM_MS milliseconds (default 1000).
 *   cc -shared -fPIC -O2 -o trim.so bench/trim_preload.c -lpthread */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static void* trim_loop(void* arg) {
  long ms = (long)arg;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  for (;;) {
    nanosleep(&ts, NULL);
    malloc_trim(0);
  }
  return NULL;
}

__attribute__((constructor)) static void start_trim_thread(void) {
  const char* env = getenv("PHONON_TRIM_MS");
  long ms = env ? atol(env) : 1000;
  if (ms <= 0)
    return;
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &a, trim_loop, (void*)ms);
  pthread_attr_destroy(&a);
}
