/*
 * sharedprop-rmtree PARENT NAME
 *
 * Deletes the tree PARENT/NAME the way only the kernel can make safe: by file descriptor.
 * Every directory is opened with openat2(2) relative to its parent's descriptor, with
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_BENEATH, and every entry is removed with
 * unlinkat(2) relative to the descriptor of the directory that holds it. So:
 *   - a symlink is never followed, wherever it appears and whenever it was swapped in
 *     (renameat2 RENAME_EXCHANGE mid-walk, CVE-2018-15664): at most the link itself is removed;
 *   - a mount point is never entered or removed (openat2 fails with EXDEV, unlinkat with EBUSY):
 *     the walk goes on with the rest and exits 3, having touched nothing across the boundary.
 * A directory still holding entries after its walk (added or moved in meanwhile) is listed and
 * walked again a bounded number of times; whatever is left then is reported (exit 4), never
 * chased outside the tree.
 *
 * The walk is iterative (no recursion, so no stack to overflow on a hostile 100,000-level tree)
 * and holds one descriptor per level: a tree deeper than the descriptors the process may have
 * (the hard RLIMIT_NOFILE, usually a million) is deleted down to that depth and reported.
 *
 * Exit codes (callers decide on these, never on the text):
 *   0  everything deleted (or NAME did not exist)
 *   2  usage: wrong arguments, NAME not one path component, PARENT not an absolute directory
 *   3  stopped at one or more mount boundaries; everything else deleted
 *   4  some entries could not be deleted (reasons on stderr)
 *   5  openat2 is not available (kernel < 5.6): nothing was deleted
 * Diagnostics go to stderr, one line each, for the log; nothing goes to stdout.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_BOUNDARY 3
#define EXIT_LEFT 4
#define EXIT_NO_OPENAT2 5

/* How often one entry or one directory is tried again when the tree changes under the walk. */
#define RETRIES 8

static long boundaries; /* mount points met (left alone) */
static long failures;   /* entries that could not be removed */
static long max_depth;  /* levels the walk may hold open */

struct frame {
	int fd;        /* the directory, open */
	char *name;    /* its name in the parent frame's directory */
	char **names;  /* its entries, as last listed */
	size_t count;  /* how many */
	size_t next;   /* the next to remove */
	int listings;  /* how often it was listed */
	long kept;     /* entries deliberately left (mount points, failures): it stays */
};

static struct frame *stack;
static long depth; /* frames on the stack */
static long capacity;

static void report(const char *what, const char *name, int err) {
	fprintf(stderr, "sharedprop-rmtree: %s %s: %s\n", what, name, strerror(err));
}

static void *must(void *p) {
	if (!p) {
		report("out of memory", "", ENOMEM);
		exit(EXIT_LEFT);
	}
	return p;
}

/* Opens directory `name` in `dirfd`: no symlink, no mount crossing, nothing outside. */
static int open_dir(int dirfd, const char *name) {
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
}

static void free_names(struct frame *f) {
	for (size_t i = 0; i < f->count; i++) free(f->names[i]);
	free(f->names);
	f->names = NULL;
	f->count = f->next = 0;
}

/* Lists the directory of `f` afresh (from its start). Returns -1 (and counts it) on failure. */
static int list(struct frame *f) {
	free_names(f);
	f->listings++;
	int listfd = dup(f->fd); /* closedir closes it; f->fd stays open */
	if (listfd < 0) return report("dup", f->name, errno), failures++, -1;
	DIR *dir = fdopendir(listfd);
	if (!dir) return report("fdopendir", f->name, errno), close(listfd), failures++, -1;
	rewinddir(dir); /* the descriptors share one offset: start from the top every time */
	size_t room = 0;
	struct dirent *entry;
	errno = 0;
	while ((entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
		if (f->count == room) {
			room = room ? room * 2 : 16;
			f->names = must(realloc(f->names, room * sizeof *f->names));
		}
		f->names[f->count++] = must(strdup(entry->d_name));
		errno = 0;
	}
	int err = errno;
	closedir(dir);
	if (err) return report("readdir", f->name, err), failures++, -1;
	return 0;
}

static void push(int fd, const char *name) {
	if (depth == capacity) {
		capacity = capacity ? capacity * 2 : 64;
		stack = must(realloc(stack, (size_t)capacity * sizeof *stack));
	}
	struct frame *f = &stack[depth++];
	memset(f, 0, sizeof *f);
	f->fd = fd;
	f->name = must(strdup(name));
}

enum outcome { GONE, KEPT, DESCENDED };

/*
 * Removes `name` from `dirfd` if it is not a directory; if it is one, opens it and pushes it
 * (DESCENDED). KEPT: left alone (a mount point, or an error), and counted.
 */
static enum outcome take(int dirfd, const char *name) {
	for (int attempt = 0; attempt <= RETRIES; attempt++) {
		if (unlinkat(dirfd, name, 0) == 0) return GONE;
		int err = errno;
		if (err == ENOENT) return GONE;
		if (err == EBUSY) return report("mount point, left:", name, err), boundaries++, KEPT;
		if (err != EISDIR && err != EPERM) return report("unlink", name, err), failures++, KEPT;
		/* A directory (EISDIR; some filesystems say EPERM). */
		if (depth >= max_depth) return report("too deep, left:", name, EMFILE), failures++, KEPT;
		int fd = open_dir(dirfd, name);
		if (fd >= 0) {
			push(fd, name);
			return DESCENDED;
		}
		err = errno;
		if (err == ENOENT) return GONE;
		if (err == ELOOP || err == ENOTDIR) continue; /* swapped for a non-directory: unlink that */
		if (err == EXDEV) return report("mount point, left:", name, err), boundaries++, KEPT;
		if (err == ENOSYS) exit(EXIT_NO_OPENAT2);
		return report("open", name, err), failures++, KEPT;
	}
	return report("keeps changing, left:", name, EAGAIN), failures++, KEPT;
}

/* Removes the (walked) directory `name` from `dirfd`. */
static enum outcome remove_dir(int dirfd, const char *name) {
	if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0) return GONE;
	int err = errno;
	if (err == ENOENT) return GONE;
	if (err == ENOTDIR) { /* swapped for a non-directory after its walk: remove that */
		enum outcome again = take(dirfd, name);
		return again == DESCENDED ? DESCENDED : again;
	}
	if (err == EBUSY) return report("mount point, left:", name, err), boundaries++, KEPT;
	return report("rmdir", name, err), failures++, KEPT;
}

static void walk(int parent, const char *name) {
	if (take(parent, name) != DESCENDED) return;
	if (list(&stack[0]) < 0) stack[0].kept++;
	while (depth > 0) {
		struct frame *f = &stack[depth - 1];
		if (f->next < f->count) {
			enum outcome o = take(f->fd, f->names[f->next++]);
			if (o == KEPT) f->kept++;
			if (o == DESCENDED && list(&stack[depth - 1]) < 0) stack[depth - 1].kept++;
			continue;
		}
		/* Walked: list it again, for entries added or moved in meanwhile. */
		if (f->kept == 0 && f->listings <= RETRIES) {
			if (list(f) < 0) f->kept++;
			else if (f->count > 0) continue;
		} else if (f->kept == 0) {
			report("keeps filling, left:", f->name, ENOTEMPTY);
			failures++;
			f->kept++;
		}
		/* Done with it: pop, and remove it unless something in it was left. */
		long kept = f->kept;
		char *own = f->name;
		close(f->fd);
		free_names(f);
		depth--;
		int holder = depth > 0 ? stack[depth - 1].fd : parent;
		enum outcome o = kept ? KEPT : remove_dir(holder, own);
		if (o == DESCENDED && list(&stack[depth - 1]) < 0) stack[depth - 1].kept++;
		if (o == KEPT && depth > 0) stack[depth - 1].kept++;
		free(own);
	}
}

static int one_component(const char *name) {
	return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

int main(int argc, char **argv) {
	if (argc != 3 || argv[1][0] != '/' || !one_component(argv[2])) {
		fprintf(stderr, "usage: sharedprop-rmtree /ABSOLUTE/PARENT NAME (NAME: one path component)\n");
		return EXIT_USAGE;
	}
	int parent = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (parent < 0) return report("open parent", argv[1], errno), EXIT_USAGE;
	/* Refuse before touching anything when the kernel cannot do this safely. */
	int probe = open_dir(parent, ".");
	if (probe < 0 && errno == ENOSYS) return report("openat2", "(kernel)", ENOSYS), EXIT_NO_OPENAT2;
	if (probe >= 0) close(probe);

	/* As many levels as descriptors can be had, less a margin. */
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
		getrlimit(RLIMIT_NOFILE, &limit);
		max_depth = (long)limit.rlim_cur > 64 ? (long)limit.rlim_cur - 32 : 32;
	} else {
		max_depth = 992;
	}

	walk(parent, argv[2]);
	close(parent);
	if (failures) return EXIT_LEFT;
	if (boundaries) return EXIT_BOUNDARY;
	return 0;
}
