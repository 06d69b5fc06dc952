/*
 * test_privdrop.c - unit tests of giving up root (proxy/daemon/privdrop.c). Looking accounts up works for anyone;
 * the switch itself needs root and happens in a forked child (the test process keeps its ids), which reports
 * each check through its exit status: ids everywhere, every thread, no way back, no capabilities. Run as
 * another user the root-only tests are skipped, and say so.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privdrop.h"

/* nobody - the unprivileged account every Debian system has. */
static void nobody(struct privdrop *pd)
{
	char err[PRIVDROP_MSG_MAX];

	if (privdrop_lookup("nobody", pd, err, sizeof(err)) < 0)
		fail_msg("lookup nobody: %s", err);
}

static void test_lookup(void **state)
{
	struct privdrop pd;
	struct passwd *pw = getpwnam("nobody");
	char err[PRIVDROP_MSG_MAX], name[80];
	size_t i;
	int primary = 0;

	(void)state;
	assert_non_null(pw);
	nobody(&pd);
	assert_string_equal(pd.name, "nobody");
	assert_int_equal(pd.uid, pw->pw_uid);
	assert_int_equal(pd.gid, pw->pw_gid);
	assert_true(pd.n_groups >= 1 && pd.n_groups <= PRIVDROP_MAX_GROUPS);
	for (i = 0; i < pd.n_groups; i++)
		primary |= pd.groups[i] == pd.gid;
	assert_true(primary);   /* the primary group is in the supplementary list too, as initgroups puts it */

	assert_int_equal(privdrop_lookup("root", &pd, err, sizeof(err)), -1);
	assert_string_equal(err, "user: \"root\" has uid 0: name an unprivileged account");
	assert_int_equal(privdrop_lookup("daneproxy-no-such-user", &pd, err, sizeof(err)), -1);
	assert_string_equal(err, "user: no such user \"daneproxy-no-such-user\"");
	assert_int_equal(privdrop_lookup("", &pd, err, sizeof(err)), -1);
	assert_string_equal(err, "user: \"\" is not a user name");
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(privdrop_lookup(name, &pd, err, sizeof(err)), -1);
}

/* No account configured: root keeps running with a warning; anyone else has nothing to drop. */
static void test_no_user(void **state)
{
	char msg[PRIVDROP_MSG_MAX];
	uid_t before = geteuid();

	(void)state;
	if (before == 0) {
		assert_int_equal(privdrop_apply(NULL, msg, sizeof(msg)), PRIVDROP_ROOT_NO_USER);
		assert_string_equal(msg, "warning: running as root; set [proxy] user = NAME to give up root once the "
					 "listeners are bound (daneproxy.conf(5))");
	} else {
		assert_int_equal(privdrop_apply(NULL, msg, sizeof(msg)), PRIVDROP_NOT_ROOT);
	}
	assert_int_equal(geteuid(), before);
}

/* Exit statuses of the child in test_drop: which check failed. */
enum {
	CHILD_OK = 0, CHILD_LOOKUP, CHILD_RESULT, CHILD_IDS, CHILD_GROUPS, CHILD_SETUID_BACK, CHILD_CAPS, CHILD_NNP,
	CHILD_THREAD, CHILD_FILE, CHILD_AGAIN, CHILD_OTHER_USER,
};

static int thread_pipe[2];

/* other_thread - started before the switch; reports the uid its own kernel credentials carry afterwards. */
static void *other_thread(void *arg)
{
	uid_t ru, eu, su;
	char go;

	(void)arg;
	if (read(thread_pipe[0], &go, 1) != 1)
		return (void *)1;
	/* The raw system call: glibc's getresuid would answer the same, but this reads this thread's credentials. */
	if (syscall(SYS_getresuid, &ru, &eu, &su) < 0)
		return (void *)1;
	return (void *)(uintptr_t)(ru == 0 || eu == 0 || su == 0 ? 1 : 0);
}

/* caps_all_zero - /proc/self/status shows no effective, permitted or ambient capability (read independently of
 * privdrop.c's own capget check). */
static int caps_all_zero(void)
{
	char line[256];
	int seen = 0, bad = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapPrm:", 7) == 0 || strncmp(line, "CapAmb:", 7) == 0) {
			seen++;
			bad |= strspn(line + 7, "\t 0") != strlen(line + 7) - 1;
		}
	fclose(f);
	return seen == 3 && !bad;
}

/* child_drop - the whole switch to nobody in a child process; the exit status says what failed. */
static int child_drop(void)
{
	struct privdrop pd, other;
	char err[PRIVDROP_MSG_MAX], msg[PRIVDROP_MSG_MAX];
	pthread_t th;
	void *thread_rc;
	gid_t groups[PRIVDROP_MAX_GROUPS + 1];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int n, fd;

	if (privdrop_lookup("nobody", &pd, err, sizeof(err)) < 0 || privdrop_lookup("daemon", &other, err, sizeof(err)) < 0)
		return CHILD_LOOKUP;
	/* Root's extra groups must go too: give the child one to lose. */
	groups[0] = 0;
	groups[1] = 4;   /* adm */
	if (setgroups(2, groups) < 0 || pipe(thread_pipe) < 0 || pthread_create(&th, NULL, other_thread, NULL) != 0)
		return CHILD_LOOKUP;
	if (privdrop_apply(&pd, msg, sizeof(msg)) != PRIVDROP_DROPPED || strstr(msg, "switched to user nobody") == NULL) {
		fprintf(stderr, "child: %s\n", msg);
		return CHILD_RESULT;
	}
	if (getresuid(&ru, &eu, &su) < 0 || ru != pd.uid || eu != pd.uid || su != pd.uid ||
	    getresgid(&rg, &eg, &sg) < 0 || rg != pd.gid || eg != pd.gid || sg != pd.gid)
		return CHILD_IDS;
	n = getgroups(PRIVDROP_MAX_GROUPS + 1, groups);
	if (n != (int)pd.n_groups)
		return CHILD_GROUPS;
	while (n-- > 0)
		if (groups[n] == 0 || groups[n] == 4)
			return CHILD_GROUPS;
	if (setuid(0) == 0 || seteuid(0) == 0 || setresuid(0, 0, 0) == 0 || setgid(0) == 0 || setgroups(0, NULL) == 0)
		return CHILD_SETUID_BACK;
	if (!caps_all_zero())
		return CHILD_CAPS;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return CHILD_NNP;
	/* The thread started as root is nobody too (glibc switches every thread). */
	if (write(thread_pipe[1], "g", 1) != 1 || pthread_join(th, &thread_rc) != 0 || thread_rc != NULL)
		return CHILD_THREAD;
	/* A file only root may read is closed to it now. */
	fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || (errno != EACCES && errno != ENOENT))
		return CHILD_FILE;
	/* Asked again (a reload), there is nothing left to do, and a different account is not reachable. */
	if (privdrop_apply(&pd, msg, sizeof(msg)) != PRIVDROP_NOT_ROOT || strstr(msg, "already running as nobody") == NULL)
		return CHILD_AGAIN;
	if (privdrop_apply(&other, msg, sizeof(msg)) != PRIVDROP_NOT_ROOT ||
	    strstr(msg, "not started as root: user = daemon has no effect") == NULL || getuid() != pd.uid)
		return CHILD_OTHER_USER;
	return CHILD_OK;
}

/* run_child - fn in a forked child; its exit status (or -signal). */
static int run_child(int (*fn)(void))
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static void test_drop(void **state)
{
	int rc;

	(void)state;
	if (geteuid() != 0) {
		print_message("skip: test_drop needs root (it switches a forked child to nobody)\n");
		skip();
	}
	rc = run_child(child_drop);
	if (rc != CHILD_OK)
		fail_msg("the switch to nobody failed at check %d (see the CHILD_* list)", rc);
	assert_int_equal(geteuid(), 0);   /* the test process itself is untouched */
}

/* The state directory must belong to the account; the warning says what to chown. */
static void test_check_dir(void **state)
{
	struct privdrop pd;
	char dir[64] = "/tmp/daneproxy-privdrop-XXXXXX", file[128], file2[128];
	char msg[PRIVDROP_MSG_MAX], want[PRIVDROP_MSG_MAX];
	int fd;

	(void)state;
	if (geteuid() != 0) {
		print_message("skip: test_check_dir needs root (it chowns to nobody)\n");
		skip();
	}
	nobody(&pd);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(privdrop_check_dir(&pd, dir, msg, sizeof(msg)), -1);
	snprintf(want, sizeof(want), "state directory %s: the directory is not owned by nobody, who cannot re-read "
				     "them after the switch (chown -R nobody: %s)", dir, dir);
	assert_string_equal(msg, want);
	assert_int_equal(chown(dir, pd.uid, pd.gid), 0);
	assert_int_equal(privdrop_check_dir(&pd, dir, msg, sizeof(msg)), 0);

	/* A key written by root inside it (a first start as root) is named. */
	snprintf(file, sizeof(file), "%s/ca.key", dir);
	fd = open(file, O_CREAT | O_WRONLY | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(privdrop_check_dir(&pd, dir, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, ": ca.key is not owned by nobody"));
	/* More of them: the first is named, the others counted; the directory too. */
	snprintf(file2, sizeof(file2), "%s/ca.pem", dir);
	fd = open(file2, O_CREAT | O_WRONLY | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(privdrop_check_dir(&pd, dir, msg, sizeof(msg)), -1);
	assert_true(strstr(msg, ": ca.key and 1 more entries are not owned by nobody") != NULL ||
		    strstr(msg, ": ca.pem and 1 more entries are not owned by nobody") != NULL);
	assert_int_equal(chown(dir, 0, 0), 0);
	assert_int_equal(privdrop_check_dir(&pd, dir, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, ": the directory and 2 entries in it are not owned by nobody"));
	assert_int_equal(chown(dir, pd.uid, pd.gid), 0);
	unlink(file2);
	assert_int_equal(chown(file, pd.uid, pd.gid), 0);
	assert_int_equal(privdrop_check_dir(&pd, dir, msg, sizeof(msg)), 0);
	unlink(file);
	rmdir(dir);

	assert_int_equal(privdrop_check_dir(&pd, dir, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "No such file or directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_no_user),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_check_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
