/* Progress of long work (tsr_config_t.progress, progress_fn): a thread that looks
 * at the task counters every interval, draws a bar on stderr and calls the
 * program's progress_fn. Private to core/. */
#ifndef TSR_CORE_PROGRESS_H
#define TSR_CORE_PROGRESS_H

#include <tessera/runtime.h>

/* Start the progress thread when the configuration asks for progress (a bar on
 * stderr, or a progress_fn); otherwise nothing. TSR_OK, or TSR_ENOMEM /
 * TSR_EBACKEND when it cannot start. */
tsr_status_t tsr__progress_start(tsr_runtime_t *rt);

/* Called by a thread of the program that waited (tsr_wait_all, a future, an
 * acquire) and may have found the work done: if a batch is being reported and has
 * ended, report its end now, so that the last bar is on stderr before whatever the
 * program prints next. One relaxed load when no batch is being reported. */
void tsr__progress_settle(tsr_runtime_t *rt);

/* Report the end of the batch under way, if one was being reported, and stop the
 * thread. Call once every task has finished (tsr_shutdown); safe when the thread
 * was never started, and twice. */
void tsr__progress_stop(tsr_runtime_t *rt);

#endif /* TSR_CORE_PROGRESS_H */
