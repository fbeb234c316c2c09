/*
 * sharedprop-rmtree PARENT NAME
 * sharedprop-rmtree --serve
 *
 * Deletes the tree PARENT/NAME the way only the kernel can make safe: by file descriptor.
 * Every directory is opened with openat2(2) relative to its parent's descriptor, with
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, and every
 * entry is removed with unlinkat(2) relative to the descriptor of the directory that holds it.
 * No path with more than one component is ever resolved below PARENT. So:
 *   - a symlink is never followed, wherever it appears and whenever it was swapped in
 *     (renameat2 RENAME_EXCHANGE mid-walk, CVE-2018-15664): at most the link itself is removed;
 *   - a mount point is never entered (openat2 fails with EXDEV) nor removed (unlinkat fails
 *     with EBUSY): the walk goes on with the rest and exits 3, having touched nothing across it.
 * An entry is first unlinked as a non-directory; EISDIR (EPERM on some filesystems) makes it a
 * directory to enter. An entry that changes type between two steps is tried again, a bounded
 * number of times. A directory still holding entries when it is removed (ENOTEMPTY: added or
 * moved in meanwhile) is listed and walked again, a bounded number of times; whatever is left
 * then is reported (exit 4), never chased.
 *
 * Depth: the walk is iterative (an explicit stack, no recursion, so no C stack to overflow on a
 * hostile `a/a/a/...` tree) and holds one descriptor per level. It raises its soft RLIMIT_NOFILE
 * to the hard limit and enters at most that many levels, less a margin; in a deeper tree the
 * directory at that depth is left whole (with the chain above it) and reported (exit 4), the rest
 * of the tree is deleted. Failing safe is the rule: nothing is ever reopened by a path.
 *
 * Exit codes (callers decide on these, never on the text):
 *   0  everything deleted (or NAME, or PARENT, did not exist)
 *   2  usage: wrong arguments, NAME not one path component (empty, ".", "..", or with a "/"),
 *      PARENT not an absolute path to a directory
 *   3  stopped at one or more mount boundaries; everything else deleted
 *   4  some entries could not be deleted (reasons on stderr)
 *   5  openat2 with these flags is not available (kernel < 5.6, or a seccomp filter): nothing
 *      was deleted; there is no fallback
 * Diagnostics go to stderr, one line each (names escaped), for the log; nothing goes to stdout.
 *
 * --serve: the same, once per request, for as long as standard input stays open (the driver keeps
 * one running, so that a Remove costs no process start). A request is PARENT and NAME, each ended
 * by a NUL byte; the answer, on stdout, is its diagnostic lines (each starting with
 * "sharedprop-rmtree:") then the line "exit N", N the exit code above. End of input: exit 0 (a
 * request cut short by it is not carried out). A request never sees what an earlier one counted;
 * the depth limit is the same for all.
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

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same number on every architecture */
#endif

#define EXIT_USAGE 2
#define EXIT_BOUNDARY 3
#define EXIT_LEFT 4
#define EXIT_NO_OPENAT2 5

/* How often one entry, or one directory's listing, is tried again while the tree changes. */
#define RETRIES 8
/* Descriptors kept free for PARENT, the standard streams and a listing's dup. */
#define FD_MARGIN 32

static long boundaries; /* mount points met (left alone) */
static long failures;   /* entries that could not be removed */
static long max_depth;  /* levels the walk may hold open */
static FILE *diag;      /* where diagnostics go: stderr, or stdout in --serve */

struct frame {
	int fd;       /* the directory, open */
	char *name;   /* its name in the directory of the frame below (or in PARENT) */
	char **names; /* its entries, as last listed */
	size_t count; /* how many */
	size_t next;  /* the next one to take */
	int listings; /* how often it was listed */
	long kept;    /* entries left in it (mount points, failures): it cannot be removed */
};

static struct frame *stack;
static long depth; /* frames on the stack */
static long capacity;

/* `name` as printable text: it comes from the tree (from anyone), so control bytes are escaped
 * and each diagnostic stays one line. */
static const char *shown(const char *name, char *buf, size_t size) {
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p && n + 5 < size; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\' || *p == '"')
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", *p);
		else
			buf[n++] = (char)*p;
	}
	buf[n] = '\0';
	return buf;
}

#define SHOWN_SIZE (4 * 256 + 1) /* a whole NAME_MAX name, every byte escaped */

static void report(const char *what, const char *name, int err) {
	char buf[SHOWN_SIZE];
	fprintf(diag, "sharedprop-rmtree: %s \"%s\" (depth %ld): %s\n", what,
	        shown(name, buf, sizeof buf), depth, strerror(err));
}

static void *must(void *p) {
	if (!p) {
		report("out of memory at", "", ENOMEM);
		exit(EXIT_LEFT);
	}
	return p;
}

/* Opens directory `name` in `dirfd`: no symlink anywhere, no mount crossing, nothing outside. */
static int open_dir(int dirfd, const char *name) {
	struct open_how how;
	memset(&how, 0, sizeof how);
	how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
}

enum outcome { GONE, KEPT, DESCENDED };

static enum outcome boundary(const char *name, int err) {
	report("mount point, left alone:", name, err);
	boundaries++;
	return KEPT;
}

static enum outcome failure(const char *what, const char *name, int err) {
	report(what, name, err);
	failures++;
	return KEPT;
}

static void free_names(struct frame *f) {
	for (size_t i = 0; i < f->count; i++) free(f->names[i]);
	free(f->names);
	f->names = NULL;
	f->count = f->next = 0;
}

/* Lists the directory of `f` afresh, from its start. On failure, counts it and keeps `f`. */
static void list(struct frame *f) {
	free_names(f);
	f->listings++;
	int listfd = dup(f->fd); /* closedir closes it; f->fd stays open for the unlinkats */
	if (listfd < 0) {
		failure("dup", f->name, errno);
		f->kept++;
		return;
	}
	DIR *dir = fdopendir(listfd);
	if (!dir) {
		failure("fdopendir", f->name, errno);
		close(listfd);
		f->kept++;
		return;
	}
	rewinddir(dir); /* the two descriptors share one offset: start from the top every time */
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
	if (err) {
		failure("readdir", f->name, err);
		f->kept++;
	}
}

/* A directory just opened; it is listed when it comes to the top of the loop. */
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

/* Drops the top frame; if it was left (not removed), so is the directory that holds it. */
static void pop(enum outcome o) {
	struct frame *f = &stack[depth - 1];
	close(f->fd);
	free_names(f);
	free(f->name);
	depth--;
	if (o == KEPT && depth > 0) stack[depth - 1].kept++;
}

/*
 * Removes `name` from `dirfd` if it is not a directory; if it is one, opens it and pushes it
 * (DESCENDED). KEPT: left alone (a mount point, or an error), and counted.
 * May move the stack (push): callers re-read frames by index afterwards.
 */
static enum outcome take(int dirfd, const char *name) {
	int unlink_err = 0;
	for (int attempt = 0; attempt <= RETRIES; attempt++) {
		if (unlinkat(dirfd, name, 0) == 0) return GONE;
		unlink_err = errno;
		if (unlink_err == ENOENT) return GONE;
		if (unlink_err == EBUSY) return boundary(name, unlink_err);
		if (unlink_err != EISDIR && unlink_err != EPERM) return failure("unlink", name, unlink_err);
		/* A directory (EISDIR; EPERM on some filesystems, or a file we may not remove). */
		if (depth >= max_depth) return failure("too deep to enter, left:", name, EMFILE);
		int fd = open_dir(dirfd, name);
		if (fd >= 0) {
			push(fd, name);
			return DESCENDED;
		}
		int err = errno;
		if (err == ENOENT) return GONE;
		if (err == EXDEV) return boundary(name, err);
		/* ELOOP: a symlink now, ENOTDIR: another non-directory: unlink that, never follow it. */
		if (err == ELOOP || err == ENOTDIR || err == EAGAIN) continue;
		return failure("open", name, err);
	}
	if (unlink_err == EPERM) return failure("unlink", name, EPERM);
	return failure("keeps changing type, left:", name, EAGAIN);
}

/*
 * The top frame has no entries left to take: remove its directory from the one below, or list
 * it again when something new is in it, or leave it when something in it was left.
 */
static void finish(int parent) {
	struct frame *f = &stack[depth - 1];
	if (f->kept) {
		pop(KEPT);
		return;
	}
	int holder = depth > 1 ? stack[depth - 2].fd : parent;
	int err = unlinkat(holder, f->name, AT_REMOVEDIR) == 0 ? 0 : errno;
	if (err == 0 || err == ENOENT) {
		pop(GONE);
	} else if ((err == ENOTEMPTY || err == EEXIST) && f->listings <= RETRIES) {
		list(f); /* something new in it: walk that too */
	} else if (err == ENOTEMPTY || err == EEXIST) {
		pop(failure("keeps filling, left:", f->name, err));
	} else if (err == EBUSY) {
		pop(boundary(f->name, err));
	} else if (err == ENOTDIR) {
		/* Swapped for a non-directory after it was entered: remove that. Our directory, moved
		 * elsewhere in the tree, is found when its new parent is listed again (ENOTEMPTY). */
		char *name = must(strdup(f->name));
		pop(GONE);
		if (take(depth > 0 ? stack[depth - 1].fd : parent, name) == KEPT && depth > 0)
			stack[depth - 1].kept++;
		free(name);
	} else {
		pop(failure("rmdir", f->name, err));
	}
}

static void walk(int parent, const char *name) {
	if (take(parent, name) != DESCENDED) return;
	while (depth > 0) {
		long top = depth - 1;
		struct frame *f = &stack[top];
		if (f->listings == 0) {
			list(f);
		} else if (f->next < f->count) {
			const char *entry = f->names[f->next++];
			if (take(f->fd, entry) == KEPT) stack[top].kept++;
		} else {
			finish(parent);
		}
	}
}

static int one_component(const char *name) {
	return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

/* As many levels as descriptors can be had, less a margin. */
static long depth_limit(void) {
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024 - FD_MARGIN;
	if (limit.rlim_cur < limit.rlim_max) {
		struct rlimit raised = {limit.rlim_max, limit.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
	}
	if (limit.rlim_cur > (rlim_t)(1L << 30)) return 1L << 30;
	return (long)limit.rlim_cur > 2 * FD_MARGIN ? (long)limit.rlim_cur - FD_MARGIN : FD_MARGIN;
}

static int usage(void) {
	fprintf(diag,
	        "sharedprop-rmtree: usage: sharedprop-rmtree /ABSOLUTE/PARENT NAME "
	        "(NAME: one path component, not . or ..), or sharedprop-rmtree --serve\n");
	return EXIT_USAGE;
}

/* Deletes PARENT/NAME: the exit code of the one-shot form. */
static int delete_tree(const char *parent_path, const char *name) {
	if (parent_path[0] != '/' || !one_component(name)) return usage();
	boundaries = failures = 0;
	/* PARENT is ours (trusted): an ordinary open. Everything below it is not. */
	int parent = open(parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (parent < 0) {
		int err = errno;
		if (err == ENOENT) return 0; /* no parent, no tree */
		report("cannot open parent", parent_path, err);
		return err == ENOTDIR ? EXIT_USAGE : EXIT_LEFT;
	}
	/* Refuse before touching anything when the kernel cannot do this safely: no openat2
	 * (ENOSYS), flags it does not know (EINVAL), or a seccomp filter (EPERM). */
	int probe = open_dir(parent, ".");
	if (probe < 0 && (errno == ENOSYS || errno == EINVAL || errno == EPERM)) {
		int err = errno;
		close(parent);
		report("openat2 unavailable, nothing deleted under", parent_path, err);
		return EXIT_NO_OPENAT2;
	}
	if (probe >= 0) close(probe);

	walk(parent, name);
	close(parent);
	if (failures || boundaries) {
		char buf[SHOWN_SIZE];
		fprintf(diag, "sharedprop-rmtree: left in \"%s\": %ld mount point(s), %ld failure(s)\n",
		        shown(name, buf, sizeof buf), boundaries, failures);
	}
	if (failures) return EXIT_LEFT;
	if (boundaries) return EXIT_BOUNDARY;
	return 0;
}

/* Requests on stdin until its end; see --serve in the header. */
static int serve(void) {
	char *parent = NULL, *name = NULL;
	size_t parent_room = 0, name_room = 0;
	for (;;) {
		/* A field cut short by the end of input (the driver died while writing) is no request:
		 * its NAME could be a prefix of another entry's. */
		ssize_t n = getdelim(&parent, &parent_room, '\0', stdin);
		if (n <= 0 || parent[n - 1] != '\0') break;
		n = getdelim(&name, &name_room, '\0', stdin);
		if (n <= 0 || name[n - 1] != '\0') break;
		int code = delete_tree(parent, name);
		fprintf(stdout, "exit %d\n", code);
		if (fflush(stdout) != 0) break; /* the driver is gone */
	}
	free(parent);
	free(name);
	return 0;
}

int main(int argc, char **argv) {
	diag = stderr;
	max_depth = depth_limit();
	int code;
	if (argc == 2 && strcmp(argv[1], "--serve") == 0) {
		diag = stdout;
		code = serve();
	} else if (argc == 3) {
		code = delete_tree(argv[1], argv[2]);
	} else {
		code = usage();
	}
	free(stack);
	return code;
}
