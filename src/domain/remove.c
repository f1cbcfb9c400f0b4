/*
 * remove.c — a stopped domain's removal, shared by `mezzo rm` and by a
 * supervisor that removes its domain as it stops (`run --rm`): first the
 * catalog (record, tree, place on its LANs: one transaction), then the run
 * directory's files, which only the record made worth keeping.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include "../lib/util.h"
#include "../net/net.h"
#include "../store/store.h"
#include "supervisor.h"

int mz_domain_forget(struct mz_store *s, const char *name, pid_t self, mz_error_t *err)
{
	int r = mz_store_begin(s, err);
	if (r == 0)
		r = mz_net_forget_domain(s, name, err);
	if (r == 0)
		r = mz_domain_rec_remove(s, name, self, err); /* refuses a running one */
	return r == 0 ? mz_store_commit(s, err) : (mz_store_rollback(s), r);
}

void mz_domain_run_dir_remove(const char *store_root, const char *name)
{
	cleanup_free char *dir = mz_domain_run_dir(store_root, name);
	/* a domain run with neither console nor log has none: one call */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	static const char *const files[] = {"console.log", "console.log.1", "supervisor.log",
					    "hosts", "resolv.conf", "console.sock"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		unlinkat(dfd, files[i], 0);
	unlinkat(dfd, "root", AT_REMOVEDIR); /* older mezzos' mount point */
	close(dfd);
	rmdir(dir);
}
