/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * txbuf.h - user-space interface of the txbuf kernel module (/dev/txbuf).
 *
 * The module sends one compound message - a list of segments - on a
 * connected TCP socket with a single kernel sendmsg() and one completion
 * destructor.  When the network stack has released every byte of the
 * message, the module frees what it allocated, releases the page-cache
 * folios, unpins the user pages and queues a struct txbuf_completion that
 * user space reads with read(2) on the device file descriptor.
 *
 * This header is shared by the module and by user space; it compiles as
 * C and as C++ and uses only the fixed-width __u32/__u64/__s32 types.
 * Every structure has the same layout on 32- and 64-bit user space (all
 * fields naturally aligned, sizes multiples of 8) and reserved fields must
 * be zero.  See docs/KMOD.md for the full description and errno table.
 */
#ifndef _UAPI_LINUX_TXBUF_H
#define _UAPI_LINUX_TXBUF_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TXBUF_DEVICE_NAME	"txbuf"		/* /dev/txbuf */

/* Segment types (struct txbuf_seg.type).  Zero is never valid. */
#define TXBUF_SEG_INLINE	1	/* bytes at addr copied into kmalloc'd objects */
#define TXBUF_SEG_FILE		2	/* page-cache folios of fd, referenced */
#define TXBUF_SEG_USER		3	/* user pages at addr, pinned (GUP) */

/*
 * One segment of a message, 32 bytes.
 *
 * INLINE: addr/len name user memory; the module copies it at SEND time, so
 *         the buffer may be reused as soon as the ioctl returns.  fd and
 *         offset must be 0.
 * FILE:   fd is a regular file open for reading; [offset, offset + len)
 *         must lie inside the file.  The page-cache folios are referenced,
 *         not copied: do not modify that range until the completion.
 *         addr must be 0.
 * USER:   addr/len name user memory that is pinned, not copied: do not
 *         modify or unmap it until the completion.  fd and offset must be 0.
 * len must be > 0 for every segment.
 */
struct txbuf_seg {
	__u32 type;		/* TXBUF_SEG_* */
	__s32 fd;		/* FILE: file descriptor; otherwise 0 */
	__u64 addr;		/* INLINE, USER: user address; FILE: 0 */
	__u64 offset;		/* FILE: byte offset in the file; otherwise 0 */
	__u64 len;		/* bytes, > 0 */
};

/* struct txbuf_send.flags */
#define TXBUF_SEND_STAGE_SMALL	(1U << 0)	/* stage every INLINE segment (BUFFERED) */
#define TXBUF_SEND_REF_SMALL	(1U << 1)	/* reference every INLINE segment (kmalloc) */
#define TXBUF_SEND_FLAGS_ALL	(TXBUF_SEND_STAGE_SMALL | TXBUF_SEND_REF_SMALL)

/* Upper bound of struct txbuf_send.nr_segs (E2BIG above it). */
#define TXBUF_MAX_SEGS		1024

/*
 * TXBUF_IOC_SEND argument, 32 bytes.  segs points to nr_segs struct
 * txbuf_seg, 8-byte aligned.  Returns 0 when the message was accepted: then
 * exactly one completion with this cookie will be queued on this device
 * file descriptor (the send may still fail later: see its status).  On an
 * error nothing was sent and no completion will come.
 */
struct txbuf_send {
	__s32 sock_fd;		/* connected TCP socket */
	__u32 flags;		/* TXBUF_SEND_* */
	__u64 cookie;		/* returned in the completion, opaque */
	__u64 segs;		/* user pointer to struct txbuf_seg[nr_segs] */
	__u32 nr_segs;		/* 1 .. TXBUF_MAX_SEGS */
	__u32 reserved;		/* must be 0 */
};

/* struct txbuf_completion.flags */
#define TXBUF_COMPL_COPIED	(1U << 0)	/* the stack copied (part of) the data */
#define TXBUF_COMPL_CONTINUED	(1U << 1)	/* needed partial-send continuation */
#define TXBUF_COMPL_STAGED	(1U << 2)	/* some INLINE bytes were staged (BUFFERED) */

/*
 * Completion record, 32 bytes, read(2) from the device fd: a read returns
 * as many whole records as fit in its buffer (at least one must fit).
 * Without TXBUF_COMPL_COPIED every notification reported zero-copy.
 */
struct txbuf_completion {
	__u64 cookie;		/* from struct txbuf_send */
	__u64 bytes;		/* bytes the socket accepted (== total if status 0) */
	__u64 latency_ns;	/* SEND ioctl entry to destructor (stack let go) */
	__s32 status;		/* 0, or -errno: -ECANCELED, -EPIPE, -ECONNRESET... */
	__u32 flags;		/* TXBUF_COMPL_* */
};

/*
 * TXBUF_IOC_STATS_LEN() result: global counters, then this fd's.
 *
 * The statistics ABI is size-prefixed, like the extensible structures of
 * clone3() and openat2() but in the opposite direction:
 *
 *  - Fields are only ever appended at the end of struct txbuf_stats; none
 *    is ever removed, moved, resized or given a new meaning.  A field that
 *    no longer means anything reads as 0.
 *  - The caller passes the size of the structure it was built with in the
 *    ioctl number itself: TXBUF_IOC_STATS_LEN(sizeof(struct txbuf_stats)).
 *    The size must be a multiple of 8, at least 8 (EINVAL otherwise).
 *  - The kernel copies min(caller's size, its own size) bytes, i.e. exactly
 *    the prefix both know; past its own size it fills the caller's buffer
 *    with zeroes.  It returns its own size (>= TXBUF_STATS_SIZE_VER0), so a
 *    caller built with a larger structure knows that fields at or after
 *    that offset were not provided (they read 0), and one built with a
 *    smaller structure knows that there is more than it asked for.
 *  - TXBUF_IOC_STATS_VER0 is the command number that binaries built before
 *    this rule used (_IOR(0xB8, 2, 256-byte struct)): the kernel serves it
 *    as a 256-byte request (the first version's fields, then zeroes where
 *    that version had reserved space) and returns 0, as it always did.
 *    Do not use it in new code.
 */
struct txbuf_stats {
	/* global, gauges (current values) */
	__u64 chains_in_flight;	/* accepted sends whose destructor has not run */
	__u64 pinned_bytes;	/* bytes owned by those chains */
	__u64 kmalloc_objs;	/* kmalloc'd objects referenced by chains */
	__u64 stage_pages;	/* BUFFERED staging pages held by chains */
	__u64 file_folios;	/* page-cache folio references held */
	__u64 user_pages;	/* user pages pinned */
	/* global, counters (since load) */
	__u64 sends;		/* SEND ioctls accepted */
	__u64 completions;	/* destructors run (zerocopy + copied + unsent) */
	__u64 completions_zerocopy;	/* sent, no notification said "copied" */
	__u64 completions_copied;	/* sent, the stack copied (part of) it */
	__u64 continuations;	/* sendmsg calls resuming a partial send */
	__u64 send_errors;	/* SEND ioctls rejected */
	__u64 chain_errors;	/* completions with status != 0 */
	__u64 bytes_sent;	/* bytes accepted by sockets */
	__u64 bytes_staged;	/* INLINE bytes staged (BUFFERED) */
	__u64 bytes_referenced;	/* bytes sent by reference (kmalloc, file, user) */
	/* this file descriptor */
	__u64 fd_chains_in_flight;
	__u64 fd_pinned_bytes;
	__u64 fd_pinned_cap;	/* ENOBUFS past it; TXBUF_IOC_SET_PINNED_CAP */
	__u64 fd_completions_ready;	/* queued, not read yet */
	/* configuration (module parameters) */
	__u64 stage_threshold;	/* INLINE segments shorter than this are staged */
	__u64 max_pinned_per_fd;
	__u64 max_pinned_total;
	/* global, counters (since load), continued */
	__u64 completions_unsent;	/* nothing was sent (cancelled, error) */
	__u64 stalls;		/* sendmsg calls that found the socket full */
	__u64 write_space_kicks;	/* continuations woken by the socket's
					 * write-space wake-up (EPOLLOUT on its
					 * wait queue)
					 */
	/* end of version 0 (TXBUF_STATS_SIZE_VER0); append new fields here */
};

/* Size of the first version: everything up to write_space_kicks. */
#define TXBUF_STATS_SIZE_VER0	208

#define TXBUF_IOC_MAGIC		0xB8
#define TXBUF_IOC_SEND		_IOW(TXBUF_IOC_MAGIC, 1, struct txbuf_send)
/* Legacy: the 256-byte request of binaries built before TXBUF_IOC_STATS_LEN. */
#define TXBUF_IOC_STATS_VER0	_IOC(_IOC_READ, TXBUF_IOC_MAGIC, 2, 256)
#define TXBUF_IOC_SET_PINNED_CAP _IOW(TXBUF_IOC_MAGIC, 3, __u64)
/*
 * Statistics of @len bytes (a multiple of 8, 8 .. _IOC_SIZEMASK): returns
 * the kernel's sizeof(struct txbuf_stats), see struct txbuf_stats.
 */
#define TXBUF_IOC_STATS_LEN(len) _IOC(_IOC_READ, TXBUF_IOC_MAGIC, 4, (len))
#define TXBUF_IOC_STATS_NR	4

/*
 * Debugging, for the module's tests (CAP_SYS_ADMIN; not a stable
 * interface): the reference counts of the pages behind a chain or behind a
 * range of a file, so a test can see who holds the memory of a chain that
 * is in flight.  Each count is folio_ref_count() of the page's folio.
 *
 * TXBUF_IOC_DEBUG_CHAIN_REFS: in: cookie (a chain of this file descriptor
 *   that has not completed; ENOENT otherwise).  out: pages (the chain's
 *   bio_vecs, one count each), refs (their sum now), refs_built (the same
 *   sum when the chain was built, before its first byte went to TCP), sent
 *   and total (bytes handed to TCP so far, of the chain's), managed (1 when
 *   its frags carry no page references: SKBFL_MANAGED_FRAG_REFS).
 * TXBUF_IOC_DEBUG_FILE_REFS: in: fd, offset, len (a regular file's range).
 *   out: pages (the folios of the range in the page cache), refs (their
 *   sum, without the lookup's own reference).
 */
struct txbuf_debug_refs {
	__u64 cookie;
	__s32 fd;
	__u32 managed;
	__u64 offset;
	__u64 len;
	__u64 pages;
	__u64 refs;
	__u64 refs_built;
	__u64 sent;
	__u64 total;
};

#define TXBUF_IOC_DEBUG_CHAIN_REFS \
	_IOWR(TXBUF_IOC_MAGIC, 5, struct txbuf_debug_refs)
#define TXBUF_IOC_DEBUG_FILE_REFS \
	_IOWR(TXBUF_IOC_MAGIC, 6, struct txbuf_debug_refs)

#endif /* _UAPI_LINUX_TXBUF_H */
