// SPDX-License-Identifier: GPL-2.0
/*
 * txbuf - send a whole compound message on a TCP socket in one kernel
 * sendmsg() with one completion destructor.
 *
 * A network filesystem wants to compose a reply from small kmalloc'd
 * objects (RPC header, attributes, directory entries), page-cache folios
 * and caller buffers, hand all of it to the socket at once and get every
 * byte of that memory back at one well-defined moment.  This module does
 * that for user space through /dev/txbuf:
 *
 *   TXBUF_IOC_SEND    build a chain from a segment list and send it
 *   read(2)           completion records (one per accepted SEND)
 *   poll(2)           EPOLLIN when records are ready
 *   TXBUF_IOC_STATS_LEN(len)  counters, size-prefixed (see the UAPI header)
 *
 * The chain mirrors struct net_txbuf of the netdev discussion "Device mem
 * changes vs pinning/zerocopy changes" (2025-05-30): typed nodes that own
 * staging pages (BUFFERED), kmalloc'd objects (ZCOPY_KERNEL), page-cache
 * folios and pinned user pages (ZCOPY_USER), plus one bio_vec array that
 * describes the message on the wire.  The chain's own ubuf_info is passed
 * in msg_ubuf with MSG_ZEROCOPY, so the network stack reports, with one
 * callback per reference drop, when it no longer needs any of the memory.
 * The last drop runs the destructor.  The chain's own msg->sg_from_iter
 * fills TCP's frags without page references (managed frag references, as
 * io_uring does for registered buffers).  See docs/KMOD.md.
 *
 * Lifetimes:
 *   chain  - ubuf.refcnt: one reference held by the sender until the whole
 *            chain was handed to TCP (or failed), one per skb that points
 *            at it.  The last drop queues free_work, which releases the
 *            memory, posts the completion record and drops the module
 *            reference the chain holds (so rmmod refuses while chains are
 *            in flight).
 *   memory - what the chain points at (staging pages, kmalloc'd objects,
 *            page-cache folios, pinned user pages) is held by the chain
 *            alone, from txbuf_chain_build() until the destructor, and
 *            so for as long as any skb holds a ubuf.refcnt reference.
 *            TCP takes no page reference per frag: txbuf_sg_from_iter()
 *            fills the frags of an skb that had none and marks it
 *            SKBFL_MANAGED_FRAG_REFS (skb_release_data() then drops no
 *            page reference, only the skb's ubuf reference).  The flag is
 *            set on the skb, not in ubuf.flags: skb_zcopy_set() ORs
 *            ubuf.flags into every skb the chain is attached to, also to
 *            copies (skb_segment(), pskb_copy(), skb_split()) whose frags
 *            did take references - those would leak.  Where the stack
 *            must hold frags on its own (a copy appended to a managed
 *            skb, pskb_expand_head(), skb_split(), skb_copy_ubufs()), it
 *            calls skb_zcopy_downgrade_managed(), which takes a reference
 *            on every frag's page.  On 6.1 and 6.12 get_page() of a slab
 *            page only raises the slab folio's count (no check refuses
 *            it, and the old MSG_ZEROCOPY path took exactly such
 *            references), and the reference can outlive kfree() of the
 *            object only while the skb is being freed; the object itself
 *            stays the chain's until the last ubuf reference.  So
 *            kmalloc'd objects go managed like every other segment, with
 *            no page-backed copy.  An skb that already had frags when the
 *            chain's bytes were appended (TCP's tail skb, filled by a
 *            plain send()) is not managed: its new frags take a page
 *            reference each, as before.  managed_frags=0 (module
 *            parameter) leaves msg->sg_from_iter unset, for comparison.
 *   sockq  - per-socket FIFO of chains not yet fully handed to TCP, one
 *            reference per pending chain plus its temporary users.  While
 *            it exists it holds:
 *            - a reference on the struct sock (sock_hold), so that q->sk
 *              can always be locked and sent to, even after user space
 *              closed the socket (TCP then fails the send: EPIPE);
 *            - an entry (q->wait) on the socket's own wait queue, the one
 *              poll() and epoll use.  The socket's normal wake-ups
 *              (sk_stream_write_space() -> EPOLLOUT, errors, state
 *              changes) call txbuf_sockq_wake(), which only queues q->dwork:
 *              it runs in softirq context with the wait-queue lock held.
 *              The module never replaces a callback of the socket.
 *            It holds no reference on the socket *file*: the socket belongs
 *            to user space, and close() closes it as usual.  The wait queue
 *            lives in the struct socket, which is freed (after an RCU grace
 *            period) once the file is released; sock_orphan() clears
 *            sk->sk_wq under sk_callback_lock first.  So the entry is
 *            added and removed under read_lock_bh(sk_callback_lock) and
 *            only while sk->sk_wq is set; once it is NULL the queue head is
 *            dying and nothing will walk it but a waker that found it under
 *            RCU before, which is why the sockq is freed through an RCU work.
 *            A closed socket (SOCK_DEAD) ends the pending chains with
 *            -ECONNABORTED when the work next runs (woken by the backstop
 *            retry timer: a close() wakes nobody).
 *            The entry and the sock reference go with the last reference,
 *            when the queue drains: every chain handed to TCP, failed, or
 *            cancelled.  Closing a device fd cancels its chains that never
 *            started (they leave at once); one partly on the wire stays
 *            until it is finished, the socket fails or user space closes
 *            it.  The work holds a queue reference while it runs
 *            (refcount_inc_not_zero, or it does nothing).
 *   ctx    - one per open device file; chains keep it alive, so a
 *            completion that arrives after close() is absorbed.
 *
 * Locks, outermost first (a lock is taken only while holding those above):
 *   txbuf_sockq_mutex  (mutex)  the sockq hash; adding and removing q->wait
 *     sk->sk_callback_lock (rwlock, read, _bh)  keeps sk->sk_wq set
 *       the socket's wait-queue lock (spin)  add/remove_wait_queue()
 *   sockq.lock         (mutex)  the queue's pending list and send cursor;
 *                               held across sendmsg()
 *     the socket lock            taken by tcp_sendmsg() inside it
 *     ctx.lock         (spin)   a chain's ctx_node and c->q
 *   ctx.lock alone              done, nr_done, pending, live, closed
 * sockq.lock and txbuf_sockq_mutex are never held together: a queue's
 * last reference is dropped (txbuf_sockq_put) after sockq.lock is released.
 * txbuf_sockq_wake() runs under the socket's wait-queue lock and takes none
 * of the above: it only queues q->dwork.  Chains are freed from txbuf_wq,
 * outside every lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/netdevice.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/shmem_fs.h>
#include <linux/sizes.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/inet_connection_sock.h>
#include <net/sock.h>
#include <net/tcp_states.h>

#include "include/uapi/linux/txbuf.h"

#define CREATE_TRACE_POINTS
#include "txbuf_trace.h"

/* Hard ceiling of every pinned-bytes cap: keeps sendmsg sizes in int range. */
#define TXBUF_PINNED_LIMIT	((unsigned long)SZ_1G)
/* INLINE bytes that are referenced are copied into objects of this size. */
#define TXBUF_KOBJ_MAX		PAGE_SIZE
/* Slots per chain node, as bufs[16] in struct net_txbuf. */
#define TXBUF_NODE_SLOTS	16
/* Backstop retry of a stalled socket (lost wake-up, closed socket). */
#define TXBUF_RETRY_MIN_MS	20
#define TXBUF_RETRY_MAX_MS	200
/* Records returned by one read(2) at most. */
#define TXBUF_READ_BATCH	256

static unsigned int stage_threshold = 1024;
module_param(stage_threshold, uint, 0644);
MODULE_PARM_DESC(stage_threshold,
		 "INLINE segments shorter than this many bytes are copied into staging pages (BUFFERED); longer ones are kmalloc'd objects referenced by the chain (0: never stage)");

static unsigned long max_pinned_per_fd = 64UL << 20;
module_param(max_pinned_per_fd, ulong, 0644);
MODULE_PARM_DESC(max_pinned_per_fd,
		 "Default and maximum pinned-bytes cap of one /dev/txbuf file descriptor (ENOBUFS past it; at most 1 GiB)");

static unsigned long max_pinned_total = 256UL << 20;
module_param(max_pinned_total, ulong, 0644);
MODULE_PARM_DESC(max_pinned_total,
		 "Pinned bytes of all chains together (ENOBUFS past it)");

static unsigned int max_chains_per_fd = 4096;
module_param(max_chains_per_fd, uint, 0644);
MODULE_PARM_DESC(max_chains_per_fd,
		 "Chains in flight plus unread completions per file descriptor (ENOBUFS past it)");

static bool managed_frags = true;
module_param(managed_frags, bool, 0644);
MODULE_PARM_DESC(managed_frags,
		 "Chains built from now on fill TCP's frags without page references, the chain holding the memory (SKBFL_MANAGED_FRAG_REFS); 0: TCP takes a page reference per frag (for comparison)");

static struct txbuf_global {
	atomic64_t chains;
	atomic64_t pinned;
	atomic64_t kmalloc_objs;
	atomic64_t stage_pages;
	atomic64_t file_folios;
	atomic64_t user_pages;
	atomic64_t sends;
	atomic64_t completions;
	atomic64_t completions_zerocopy;
	atomic64_t completions_copied;
	atomic64_t completions_unsent;
	atomic64_t stalls;
	atomic64_t write_space_kicks;
	atomic64_t continuations;
	atomic64_t send_errors;
	atomic64_t chain_errors;
	atomic64_t bytes_sent;
	atomic64_t bytes_staged;
	atomic64_t bytes_referenced;
} txbuf_g;

static struct workqueue_struct *txbuf_wq;

/* What a chain node owns, as enum net_txbuf_type (plus page-cache folios). */
enum txbuf_node_type {
	TXBUF_NODE_BUFFERED,		/* staging pages holding copies */
	TXBUF_NODE_ZCOPY_KERNEL,	/* kmalloc'd objects */
	TXBUF_NODE_ZCOPY_FILE,		/* page-cache folio references */
	TXBUF_NODE_ZCOPY_USER,		/* pinned user pages */
};

struct txbuf_node {
	struct txbuf_node *next;
	enum txbuf_node_type type;
	u8 nr_used;
	union {
		void *bufs[TXBUF_NODE_SLOTS];		/* ZCOPY_KERNEL */
		struct page *pages[TXBUF_NODE_SLOTS];	/* BUFFERED, ZCOPY_USER */
		struct folio *folios[TXBUF_NODE_SLOTS];	/* ZCOPY_FILE */
	};
};

struct txbuf_record {
	struct list_head node;
	struct txbuf_completion c;
};

/* One open /dev/txbuf. */
struct txbuf_ctx {
	refcount_t refs;		/* the open file + one per chain */
	spinlock_t lock;		/* done, nr_done, pending, live, closed */
	struct list_head done;		/* struct txbuf_record, oldest first */
	struct list_head pending;	/* chains not yet handed to TCP */
	struct list_head live;		/* chains built, not yet released */
	unsigned int nr_done;
	bool closed;
	wait_queue_head_t wq;
	atomic64_t pinned;
	atomic_t chains;
	u64 cap;
};

struct txbuf_sockq;

struct txbuf_chain {
	struct ubuf_info ubuf;		/* refcount of the whole chain */
	struct txbuf_ctx *ctx;
	struct txbuf_sockq *q;		/* while on q->pending */
	struct list_head q_node;
	struct list_head ctx_node;
	struct list_head live_node;	/* ctx->live, for the debug ioctl */
	struct txbuf_node *nodes, *tail;
	struct bio_vec *bvec;
	unsigned int nr_bvec, max_bvec;
	unsigned int cur_idx, cur_off;	/* send cursor in bvec[] */
	struct page *stage_page;	/* staging page being filled */
	unsigned int stage_off;
	unsigned int stage_below;	/* stage INLINE segments shorter than this */
	u64 total, sent;
	u64 cookie, start_ns, done_ns;
	u64 bytes_staged, bytes_ref;
	u32 nr_kmalloc, nr_stage, nr_folios, nr_user;
	u32 flags;			/* TXBUF_COMPL_* */
	int status;
	struct mmpin mmp;		/* USER pages charged to RLIMIT_MEMLOCK */
	bool cancelled;			/* device closed before the first byte */
	bool copied;			/* a notification reported a copy */
	bool managed;			/* frags without page references */
	u64 refs_built;			/* page refcounts once built (debug) */
	unsigned int debug_id;		/* names the chain in the tracepoints */
	struct txbuf_record *rec;
	struct work_struct free_work;
};

/* Chains waiting to be handed to one socket, in submission order. */
struct txbuf_sockq {
	struct hlist_node hnode;	/* txbuf_sockq_hash */
	struct sock *sk;		/* sock_hold()ed */
	struct wait_queue_entry wait;	/* on sk->sk_wq->wait, see above */
	bool waiting;			/* wait is on the socket's queue */
	refcount_t refs;		/* one per pending chain + users */
	struct mutex lock;		/* pending, the chains' send cursors */
	struct list_head pending;
	struct delayed_work dwork;	/* continue partial sends */
	struct rcu_work rwork;		/* free after a grace period */
	unsigned long backoff;		/* jiffies before a kicked retry */
	unsigned int retry_ms;		/* next backstop retry, doubles */
	bool dead;
};

static atomic_t txbuf_debug_ids;		/* chain debug_id source */
static DEFINE_HASHTABLE(txbuf_sockq_hash, 6);
static DEFINE_MUTEX(txbuf_sockq_mutex);		/* hash, q->wait */

static void txbuf_sockq_push(struct txbuf_sockq *q, struct socket *sock);

/* ---------------------------------------------------------------------
 * Destructor
 */

static void txbuf_ctx_put(struct txbuf_ctx *ctx)
{
	if (refcount_dec_and_test(&ctx->refs))
		kfree(ctx);
}

/* Release everything the chain owns; no completion is posted here. */
static void txbuf_chain_release(struct txbuf_chain *c)
{
	struct txbuf_node *n, *next;
	unsigned int i;

	spin_lock(&c->ctx->lock);
	list_del_init(&c->live_node);
	spin_unlock(&c->ctx->lock);
	for (n = c->nodes; n; n = next) {
		next = n->next;
		switch (n->type) {
		case TXBUF_NODE_BUFFERED:
			for (i = 0; i < n->nr_used; i++)
				__free_page(n->pages[i]);
			break;
		case TXBUF_NODE_ZCOPY_KERNEL:
			for (i = 0; i < n->nr_used; i++)
				kfree(n->bufs[i]);
			break;
		case TXBUF_NODE_ZCOPY_FILE:
			for (i = 0; i < n->nr_used; i++)
				folio_put(n->folios[i]);
			break;
		case TXBUF_NODE_ZCOPY_USER:
			unpin_user_pages(n->pages, n->nr_used);
			break;
		}
		kfree(n);
	}
	c->nodes = NULL;
	c->tail = NULL;
	/* The pages are unpinned: give back what they were charged. */
	mm_unaccount_pinned_pages(&c->mmp);
	c->mmp.user = NULL;
	kvfree(c->bvec);
	c->bvec = NULL;

	atomic64_sub(c->nr_kmalloc, &txbuf_g.kmalloc_objs);
	atomic64_sub(c->nr_stage, &txbuf_g.stage_pages);
	atomic64_sub(c->nr_folios, &txbuf_g.file_folios);
	atomic64_sub(c->nr_user, &txbuf_g.user_pages);
	atomic64_sub(c->total, &txbuf_g.pinned);
	atomic64_sub(c->total, &c->ctx->pinned);
	atomic_dec(&c->ctx->chains);
	atomic64_dec(&txbuf_g.chains);
}

/* Free a chain and everything it holds; the caller posts nothing. */
static void txbuf_chain_destroy(struct txbuf_chain *c)
{
	struct txbuf_ctx *ctx = c->ctx;

	txbuf_chain_release(c);
	kfree(c->rec);
	kfree(c);
	txbuf_ctx_put(ctx);
	module_put(THIS_MODULE);
}

static void txbuf_ctx_post(struct txbuf_ctx *ctx, struct txbuf_record *rec)
{
	spin_lock(&ctx->lock);
	if (ctx->closed) {
		/* Nobody can read it any more: absorb. */
		spin_unlock(&ctx->lock);
		kfree(rec);
		return;
	}
	list_add_tail(&rec->node, &ctx->done);
	ctx->nr_done++;
	spin_unlock(&ctx->lock);
	wake_up_interruptible_poll(&ctx->wq, EPOLLIN | EPOLLRDNORM |
				   EPOLLOUT | EPOLLWRNORM);
}

/* The destructor proper, in process context on txbuf_wq. */
static void txbuf_chain_free_work(struct work_struct *work)
{
	struct txbuf_chain *c = container_of(work, struct txbuf_chain,
					     free_work);
	struct txbuf_ctx *ctx = c->ctx;
	struct txbuf_record *rec = c->rec;
	bool copied = READ_ONCE(c->copied);

	rec->c.cookie = c->cookie;
	rec->c.bytes = c->sent;
	rec->c.latency_ns = c->done_ns - c->start_ns;
	rec->c.status = c->status;
	rec->c.flags = c->flags | (copied ? TXBUF_COMPL_COPIED : 0);

	trace_txbuf_chain_complete(c->debug_id, rec->c.cookie, rec->c.bytes,
				   rec->c.latency_ns, rec->c.status,
				   rec->c.flags, copied);
	txbuf_chain_release(c);
	atomic64_inc(&txbuf_g.completions);
	if (!rec->c.bytes)
		atomic64_inc(&txbuf_g.completions_unsent);
	else if (copied)
		atomic64_inc(&txbuf_g.completions_copied);
	else
		atomic64_inc(&txbuf_g.completions_zerocopy);
	if (c->status)
		atomic64_inc(&txbuf_g.chain_errors);
	kfree(c);

	txbuf_ctx_post(ctx, rec);
	txbuf_ctx_put(ctx);
	/*
	 * Last: the module may go away once this returns; destroy_workqueue()
	 * in txbuf_exit() waits for this work function to finish.
	 */
	module_put(THIS_MODULE);
}

/*
 * ubuf_info callback: called once per reference drop, by the stack with an
 * skb (possibly in softirq context) or without one (sendmsg's own puts),
 * and by us when the sender lets go.  Only the last drop does anything.
 */
static void txbuf_ubuf_complete(struct sk_buff *skb, struct ubuf_info *uarg,
				bool zerocopy_success)
{
	struct txbuf_chain *c = container_of(uarg, struct txbuf_chain, ubuf);
	/* Unless this is the last reference, c may be gone after the dec. */
	unsigned int debug_id = c->debug_id;
	u64 cookie = c->cookie;
	bool last;
	int r;

	if (!zerocopy_success)
		WRITE_ONCE(c->copied, true);
	last = __refcount_dec_and_test(&uarg->refcnt, &r);
	trace_txbuf_chain_put(debug_id, cookie, r - 1, zerocopy_success);
	if (!last)
		return;
	c->done_ns = ktime_get_ns();
	queue_work(txbuf_wq, &c->free_work);
}

#ifdef TXBUF_HAVE_UBUF_INFO_OPS
static const struct ubuf_info_ops txbuf_ubuf_ops = {
	.complete = txbuf_ubuf_complete,
};

static void txbuf_ubuf_init(struct ubuf_info *uarg)
{
	uarg->ops = &txbuf_ubuf_ops;
}

#define TXBUF_UBUF_KIND "ubuf_info_ops"
#else
#define TXBUF_UBUF_KIND "ubuf_info callback"

static void txbuf_ubuf_init(struct ubuf_info *uarg)
{
	uarg->callback = txbuf_ubuf_complete;
}
#endif

/* ---------------------------------------------------------------------
 * Building a chain
 */

static int txbuf_node_reserve(struct txbuf_chain *c,
			      enum txbuf_node_type type)
{
	struct txbuf_node *n;

	if (c->tail && c->tail->type == type &&
	    c->tail->nr_used < TXBUF_NODE_SLOTS)
		return 0;
	n = kzalloc(sizeof(*n), GFP_KERNEL_ACCOUNT);
	if (!n)
		return -ENOMEM;
	n->type = type;
	if (c->tail)
		c->tail->next = n;
	else
		c->nodes = n;
	c->tail = n;
	return 0;
}

static int txbuf_add_bvec(struct txbuf_chain *c, struct page *page,
			  unsigned int off, unsigned int len)
{
	struct bio_vec *bv;

	if (c->nr_bvec) {
		bv = &c->bvec[c->nr_bvec - 1];
		if (bv->bv_page == page && bv->bv_offset + bv->bv_len == off) {
			bv->bv_len += len;
			return 0;
		}
	}
	if (WARN_ON_ONCE(c->nr_bvec >= c->max_bvec))
		return -EOVERFLOW;
	bv = &c->bvec[c->nr_bvec++];
	bv->bv_page = page;
	bv->bv_offset = off;
	bv->bv_len = len;
	return 0;
}

/* Describe directly mapped kernel memory, one bio_vec per page. */
static int txbuf_add_kaddr(struct txbuf_chain *c, void *p, size_t len)
{
	while (len) {
		unsigned int off = offset_in_page(p);
		unsigned int n = min_t(size_t, len, PAGE_SIZE - off);
		int err = txbuf_add_bvec(c, virt_to_page(p), off, n);

		if (err)
			return err;
		p += n;
		len -= n;
	}
	return 0;
}

/* INLINE, BUFFERED: copy into the chain's staging pages, packed. */
static int txbuf_add_staged(struct txbuf_chain *c, const char __user *src,
			    size_t len)
{
	c->flags |= TXBUF_COMPL_STAGED;
	c->bytes_staged += len;
	while (len) {
		unsigned int n;
		int err;

		if (!c->stage_page || c->stage_off == PAGE_SIZE) {
			struct page *page;

			err = txbuf_node_reserve(c, TXBUF_NODE_BUFFERED);
			if (err)
				return err;
			page = alloc_page(GFP_KERNEL_ACCOUNT);
			if (!page)
				return -ENOMEM;
			c->tail->pages[c->tail->nr_used++] = page;
			c->nr_stage++;
			atomic64_inc(&txbuf_g.stage_pages);
			c->stage_page = page;
			c->stage_off = 0;
		}
		n = min_t(size_t, len, PAGE_SIZE - c->stage_off);
		if (copy_from_user(page_address(c->stage_page) + c->stage_off,
				   src, n))
			return -EFAULT;
		err = txbuf_add_bvec(c, c->stage_page, c->stage_off, n);
		if (err)
			return err;
		c->stage_off += n;
		src += n;
		len -= n;
	}
	return 0;
}

/* INLINE, referenced: copy into kmalloc'd objects the chain keeps alive. */
static int txbuf_add_kobjs(struct txbuf_chain *c, const char __user *src,
			   size_t len)
{
	c->bytes_ref += len;
	while (len) {
		size_t n = min_t(size_t, len, TXBUF_KOBJ_MAX);
		void *obj;
		int err;

		err = txbuf_node_reserve(c, TXBUF_NODE_ZCOPY_KERNEL);
		if (err)
			return err;
		obj = kmalloc(n, GFP_KERNEL_ACCOUNT);
		if (!obj)
			return -ENOMEM;
		c->tail->bufs[c->tail->nr_used++] = obj;
		c->nr_kmalloc++;
		atomic64_inc(&txbuf_g.kmalloc_objs);
		if (copy_from_user(obj, src, n))
			return -EFAULT;
		err = txbuf_add_kaddr(c, obj, n);
		if (err)
			return err;
		src += n;
		len -= n;
	}
	return 0;
}

/*
 * USER: pin the pages in batches straight into the chain's nodes.  They
 * are charged first to the caller's locked-memory limit, as MSG_ZEROCOPY
 * charges its pinned pages (ENOBUFS past RLIMIT_MEMLOCK, nothing charged
 * with CAP_IPC_LOCK); txbuf_chain_release() gives the charge back.
 */
static int txbuf_add_user(struct txbuf_chain *c, unsigned long addr,
			  size_t len)
{
	unsigned long start = addr & PAGE_MASK;
	unsigned int off = offset_in_page(addr);
	unsigned long nr_pages = DIV_ROUND_UP(off + len, PAGE_SIZE);
	int err;

	err = mm_account_pinned_pages(&c->mmp, len);
	if (err)
		return err;
	c->bytes_ref += len;
	while (nr_pages) {
		struct txbuf_node *n;
		struct page **pages;
		int batch, got, i;

		err = txbuf_node_reserve(c, TXBUF_NODE_ZCOPY_USER);
		if (err)
			return err;
		n = c->tail;
		pages = &n->pages[n->nr_used];
		batch = min_t(unsigned long, nr_pages,
			      TXBUF_NODE_SLOTS - n->nr_used);
		got = pin_user_pages_fast(start, batch, 0, pages);
		if (got <= 0)
			return got == -ENOMEM ? -ENOMEM : -EFAULT;
		n->nr_used += got;
		c->nr_user += got;
		atomic64_add(got, &txbuf_g.user_pages);
		for (i = 0; i < got; i++) {
			unsigned int seg = min_t(size_t, len, PAGE_SIZE - off);

			err = txbuf_add_bvec(c, pages[i], off, seg);
			if (err)
				return err;
			len -= seg;
			off = 0;
		}
		start += (unsigned long)got << PAGE_SHIFT;
		nr_pages -= got;
	}
	return 0;
}

/*
 * An up-to-date folio of the page cache with a reference.  Look it up in
 * the cache first: tmpfs has no ->read_folio on 6.1, so a cached tmpfs
 * page must never go through read_cache_folio(), and an absent one (hole,
 * swapped out) is read through shmem.
 */
static struct folio *txbuf_get_folio(struct file *file, pgoff_t index)
{
	struct address_space *mapping = file->f_mapping;
	struct folio *folio;

	/* NULL when absent on 6.1, ERR_PTR(-ENOENT) on later kernels. */
	folio = filemap_get_folio(mapping, index);
	if (!IS_ERR_OR_NULL(folio)) {
		if (folio_test_uptodate(folio))
			return folio;
		folio_put(folio);
	}
	if (shmem_mapping(mapping)) {
		struct page *page;

		page = shmem_read_mapping_page_gfp(mapping, index,
						   mapping_gfp_mask(mapping));
		if (IS_ERR(page))
			return ERR_CAST(page);
		return page_folio(page);
	}
	if (!mapping->a_ops->read_folio)
		return ERR_PTR(-EINVAL);
	return read_cache_folio(mapping, index, NULL, file);
}

/* FILE: reference the page-cache folios covering [pos, pos + len). */
static int txbuf_add_file(struct txbuf_chain *c, int fd, u64 pos, u64 len)
{
	u64 end = pos + len;
	struct inode *inode;
	struct file *file;
	int err = 0;

	file = fget(fd);
	if (!file)
		return -EBADF;
	if (!(file->f_mode & FMODE_READ)) {
		err = -EBADF;
		goto out;
	}
	inode = file_inode(file);
	if (!S_ISREG(inode->i_mode) || IS_DAX(inode) || !file->f_mapping) {
		err = -EINVAL;
		goto out;
	}
	if (end > (u64)i_size_read(inode)) {
		err = -EINVAL;
		goto out;
	}
	c->bytes_ref += len;
	while (pos < end) {
		struct folio *folio;
		u64 fpos, fend;

		err = txbuf_node_reserve(c, TXBUF_NODE_ZCOPY_FILE);
		if (err)
			goto out;
		folio = txbuf_get_folio(file, pos >> PAGE_SHIFT);
		if (IS_ERR(folio)) {
			err = PTR_ERR(folio);
			goto out;
		}
		c->tail->folios[c->tail->nr_used++] = folio;
		c->nr_folios++;
		atomic64_inc(&txbuf_g.file_folios);
		fpos = folio_pos(folio);
		fend = min(end, fpos + folio_size(folio));
		if (WARN_ON_ONCE(pos < fpos || pos >= fend)) {
			err = -EIO;
			goto out;
		}
		while (pos < fend) {
			struct page *page = folio_page(folio, (pos - fpos) >>
						       PAGE_SHIFT);
			unsigned int off = offset_in_page(pos);
			unsigned int n = min_t(u64, fend - pos, PAGE_SIZE - off);

			err = txbuf_add_bvec(c, page, off, n);
			if (err)
				goto out;
			pos += n;
		}
	}
out:
	fput(file);
	return err;
}

/*
 * Check every segment before anything is allocated or pinned; compute the
 * total length and an upper bound of the bio_vecs needed.
 */
static int txbuf_validate(const struct txbuf_seg *segs, unsigned int nr,
			  u64 cap, u64 *totalp, unsigned long *max_bvecp)
{
	unsigned long max_bvec = 0;
	u64 total = 0, last;
	unsigned int i;

	for (i = 0; i < nr; i++) {
		const struct txbuf_seg *s = &segs[i];

		if (!s->len)
			return -EINVAL;
		switch (s->type) {
		case TXBUF_SEG_INLINE:
		case TXBUF_SEG_USER:
			if (s->fd || s->offset)
				return -EINVAL;
			if (check_add_overflow(s->addr, s->len - 1, &last))
				return -EOVERFLOW;
			if (s->len > cap)
				return -EMSGSIZE;
			if (!access_ok(u64_to_user_ptr(s->addr), s->len))
				return -EFAULT;
			if (s->type == TXBUF_SEG_INLINE)
				max_bvec += 2 * DIV_ROUND_UP(s->len, PAGE_SIZE) + 1;
			else
				max_bvec += DIV_ROUND_UP(offset_in_page(s->addr) +
							 s->len, PAGE_SIZE);
			break;
		case TXBUF_SEG_FILE:
			if (s->addr)
				return -EINVAL;
			if (s->fd < 0)
				return -EBADF;
			if (s->offset > (u64)LLONG_MAX ||
			    s->len > (u64)LLONG_MAX - s->offset)
				return -EOVERFLOW;
			if (s->len > cap)
				return -EMSGSIZE;
			max_bvec += DIV_ROUND_UP(offset_in_page(s->offset) +
						 s->len, PAGE_SIZE);
			break;
		default:
			return -EINVAL;
		}
		if (check_add_overflow(total, s->len, &total))
			return -EOVERFLOW;
	}
	if (total > cap)
		return -EMSGSIZE;
	*totalp = total;
	*max_bvecp = max_bvec;
	return 0;
}

static int txbuf_chain_build(struct txbuf_chain *c,
			     const struct txbuf_seg *segs, unsigned int nr)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < nr && !err; i++) {
		const struct txbuf_seg *s = &segs[i];
		const char __user *src = u64_to_user_ptr(s->addr);

		switch (s->type) {
		case TXBUF_SEG_INLINE:
			if (s->len < c->stage_below)
				err = txbuf_add_staged(c, src, s->len);
			else
				err = txbuf_add_kobjs(c, src, s->len);
			break;
		case TXBUF_SEG_FILE:
			err = txbuf_add_file(c, s->fd, s->offset, s->len);
			break;
		case TXBUF_SEG_USER:
			err = txbuf_add_user(c, s->addr, s->len);
			break;
		}
	}
	return err;
}

/* ---------------------------------------------------------------------
 * Per-socket queues
 */

/*
 * Wake-up function of q->wait, called by every wake-up of the socket's wait
 * queue, in any context (often softirq), with the wait-queue lock held.
 * Room to write, an error or a state change (no key) may let the queue
 * move: kick the continuation, nothing else.  Never removes itself, and
 * never counts as an exclusive waiter woken (returns 0).
 */
static int txbuf_sockq_wake(struct wait_queue_entry *wait, unsigned int mode,
			    int sync, void *key)
{
	struct txbuf_sockq *q = container_of(wait, struct txbuf_sockq, wait);
	__poll_t mask = key_to_poll(key);

	if (mask && !(mask & (EPOLLOUT | EPOLLWRNORM | EPOLLERR | EPOLLHUP)))
		return 0;
	if (READ_ONCE(q->dead))
		return 0;
	mod_delayed_work(txbuf_wq, &q->dwork, READ_ONCE(q->backoff));
	if (mask & EPOLLOUT)
		atomic64_inc(&txbuf_g.write_space_kicks);
	return 0;
}

static void txbuf_sockq_free_work(struct work_struct *work)
{
	struct txbuf_sockq *q = container_of(to_rcu_work(work),
					     struct txbuf_sockq, rwork);

	/*
	 * q->wait is off the socket's queue, or that queue was dying and
	 * every waker that could still see it has left its RCU read side:
	 * nothing can queue q->dwork any more.
	 */
	cancel_delayed_work_sync(&q->dwork);
	sock_put(q->sk);
	mutex_destroy(&q->lock);
	kfree(q);
	module_put(THIS_MODULE);	/* last, see txbuf_chain_free_work() */
}

/*
 * Put q->wait on the socket's wait queue, or take it off.  Under
 * sk_callback_lock sk->sk_wq cannot be cleared by sock_orphan(), so the
 * queue head is alive; once it is NULL the entry is left to the dying
 * head (see the top of the file).  Called with txbuf_sockq_mutex.
 */
static void txbuf_sockq_wait(struct txbuf_sockq *q, bool add)
{
	struct sock *sk = q->sk;
	struct socket_wq *wq;

	lockdep_assert_held(&txbuf_sockq_mutex);
	read_lock_bh(&sk->sk_callback_lock);
	wq = rcu_dereference_protected(sk->sk_wq,
				       lockdep_is_held(&sk->sk_callback_lock));
	if (wq && add)
		add_wait_queue(&wq->wait, &q->wait);
	else if (wq && q->waiting)
		remove_wait_queue(&wq->wait, &q->wait);
	q->waiting = wq && add;
	read_unlock_bh(&sk->sk_callback_lock);
}

static void txbuf_sockq_put(struct txbuf_sockq *q)
{
	if (!refcount_dec_and_mutex_lock(&q->refs, &txbuf_sockq_mutex))
		return;
	WRITE_ONCE(q->dead, true);
	txbuf_sockq_wait(q, false);
	hash_del(&q->hnode);
	mutex_unlock(&txbuf_sockq_mutex);
	queue_rcu_work(txbuf_wq, &q->rwork);
}

static void txbuf_sockq_work(struct work_struct *work)
{
	struct txbuf_sockq *q = container_of(to_delayed_work(work),
					     struct txbuf_sockq, dwork);

	if (!refcount_inc_not_zero(&q->refs))
		return;
	mutex_lock(&q->lock);
	txbuf_sockq_push(q, NULL);
	mutex_unlock(&q->lock);
	txbuf_sockq_put(q);
}

/*
 * The queue of @sock's chains, created if needed; a reference.  The caller
 * holds the socket file (sockfd_lookup), so sk->sk_wq is set.
 */
static struct txbuf_sockq *txbuf_sockq_get(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct txbuf_sockq *q;

	mutex_lock(&txbuf_sockq_mutex);
	hash_for_each_possible(txbuf_sockq_hash, q, hnode, (unsigned long)sk) {
		/* A hashed queue is never at zero: see txbuf_sockq_put(). */
		if (q->sk == sk) {
			refcount_inc(&q->refs);
			goto out;
		}
	}
	q = kzalloc(sizeof(*q), GFP_KERNEL);
	if (!q) {
		q = ERR_PTR(-ENOMEM);
		goto out;
	}
	q->sk = sk;
	sock_hold(sk);
	refcount_set(&q->refs, 1);
	mutex_init(&q->lock);
	INIT_LIST_HEAD(&q->pending);
	INIT_DELAYED_WORK(&q->dwork, txbuf_sockq_work);
	INIT_RCU_WORK(&q->rwork, txbuf_sockq_free_work);
	init_waitqueue_func_entry(&q->wait, txbuf_sockq_wake);
	__module_get(THIS_MODULE);
	hash_add(txbuf_sockq_hash, &q->hnode, (unsigned long)sk);
	txbuf_sockq_wait(q, true);
out:
	mutex_unlock(&txbuf_sockq_mutex);
	return q;
}

/*
 * msg->sg_from_iter of a chain's sends, as io_uring's io_sg_from_iter() for
 * registered buffers: put the chain's bio_vecs into @skb's frags without
 * page references and mark the skb SKBFL_MANAGED_FRAG_REFS (the lifetime
 * rules at the top of the file).  An skb that already has frags that are
 * not managed gets a page reference per new frag, like its others.  6.1
 * passes the socket and leaves its memory accounting to this callback;
 * later kernels account in the caller (__zerocopy_sg_from_iter()).
 */
#ifdef TXBUF_SG_FROM_ITER_SK
static int txbuf_sg_from_iter(struct sock *sk, struct sk_buff *skb,
			      struct iov_iter *from, size_t length)
#else
static int txbuf_sg_from_iter(struct sk_buff *skb, struct iov_iter *from,
			      size_t length)
#endif
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	int frag = shinfo->nr_frags;
	unsigned long truesize = 0;
	struct bvec_iter bi;
	size_t copied = 0;
	bool managed;

	if (!frag)
		shinfo->flags |= SKBFL_MANAGED_FRAG_REFS;
	managed = skb_zcopy_managed(skb);

	bi.bi_size = min(iov_iter_count(from), length);
	bi.bi_bvec_done = from->iov_offset;
	bi.bi_idx = 0;
	while (bi.bi_size && frag < MAX_SKB_FRAGS) {
		struct bio_vec v = mp_bvec_iter_bvec(from->bvec, bi);

		if (!managed)
			get_page(v.bv_page);
		copied += v.bv_len;
		truesize += PAGE_ALIGN(v.bv_len + v.bv_offset);
		__skb_fill_page_desc_noacc(shinfo, frag++, v.bv_page,
					   v.bv_offset, v.bv_len);
		bvec_iter_advance_single(from->bvec, &bi, v.bv_len);
	}
	shinfo->nr_frags = frag;
	from->bvec += bi.bi_idx;
	from->nr_segs -= bi.bi_idx;
	from->count -= copied;
	from->iov_offset = bi.bi_bvec_done;

	skb->data_len += copied;
	skb->len += copied;
	skb->truesize += truesize;
#ifdef TXBUF_SG_FROM_ITER_SK
	if (sk && sk->sk_type == SOCK_STREAM) {
		sk_wmem_queued_add(sk, truesize);
		if (!skb_zcopy_pure(skb))
			sk_mem_charge(sk, truesize);
	} else {
		refcount_add(truesize, &skb->sk->sk_wmem_alloc);
	}
#endif
	/* TCP goes on in a new skb (or has sent part of the chain). */
	return bi.bi_size ? -EMSGSIZE : 0;
}

/*
 * @sock is the socket of the SEND that is running, NULL in the work.  With
 * it, sock_sendmsg() makes the LSM check of the caller's send; without it
 * the continuation goes straight to the protocol, as a blocking sendmsg()
 * continues inside tcp_sendmsg(): the struct socket may be gone (user
 * space closed it), the sock is not, and TCP fails a closed one (EPIPE).
 */
static int txbuf_chain_sendmsg(struct txbuf_sockq *q, struct txbuf_chain *c,
			       struct socket *sock)
{
	struct sock *sk = q->sk;
	struct msghdr msg = {};

	/*
	 * MSG_ZEROCOPY with our own msg_ubuf: TCP attaches the chain's
	 * ubuf_info to every skb and, through txbuf_sg_from_iter(), points
	 * its frags at the chain's pages instead of copying (without
	 * txbuf_sg_from_iter(), managed_frags=0, it takes page references).
	 * No SO_ZEROCOPY needed.  MSG_SPLICE_PAGES is not used:
	 * with MSG_ZEROCOPY set TCP ignores it, and on its own it would
	 * refuse slab pages (sendpage_ok()).
	 */
	msg.msg_flags = MSG_ZEROCOPY | MSG_DONTWAIT | MSG_NOSIGNAL;
	msg.msg_ubuf = &c->ubuf;
	if (c->managed)
		msg.sg_from_iter = txbuf_sg_from_iter;
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, c->bvec + c->cur_idx,
		      c->nr_bvec - c->cur_idx,
		      c->total - c->sent + c->cur_off);
	iov_iter_advance(&msg.msg_iter, c->cur_off);
	if (!(READ_ONCE(sk->sk_route_caps) & NETIF_F_SG))
		WRITE_ONCE(c->copied, true);	/* TCP will copy */
	if (sock)
		return sock_sendmsg(sock, &msg);
	return READ_ONCE(sk->sk_prot)->sendmsg(sk, &msg,
					       msg_data_left(&msg));
}

static void txbuf_chain_advance(struct txbuf_chain *c, size_t n)
{
	c->sent += n;
	n += c->cur_off;
	while (c->cur_idx < c->nr_bvec && n >= c->bvec[c->cur_idx].bv_len) {
		n -= c->bvec[c->cur_idx].bv_len;
		c->cur_idx++;
	}
	c->cur_off = n;
}

/*
 * The chain leaves the queue: completely handed to TCP (err 0) or failed.
 * The caller holds q->lock and a reference of its own on q.
 */
static void txbuf_chain_handover(struct txbuf_sockq *q, struct txbuf_chain *c,
				 int err)
{
	struct txbuf_ctx *ctx = c->ctx;

	list_del(&c->q_node);
	spin_lock(&ctx->lock);
	list_del_init(&c->ctx_node);
	c->q = NULL;
	spin_unlock(&ctx->lock);
	c->status = err;
	atomic64_add(c->sent, &txbuf_g.bytes_sent);
	refcount_dec(&q->refs);			/* the chain's, never the last */
	txbuf_ubuf_complete(NULL, &c->ubuf, true);	/* the sender's ref */
}

/*
 * Hand as much of the queued chains to TCP as it takes, in order.  @sock:
 * see txbuf_chain_sendmsg().
 */
static void txbuf_sockq_push(struct txbuf_sockq *q, struct socket *sock)
{
	struct txbuf_chain *c, *tmp;
	bool progress = false;
	int ret;

	lockdep_assert_held(&q->lock);
	/* Cancelled chains that never started leave from anywhere. */
	list_for_each_entry_safe(c, tmp, &q->pending, q_node)
		if (!c->sent && READ_ONCE(c->cancelled))
			txbuf_chain_handover(q, c, -ECANCELED);

	while ((c = list_first_entry_or_null(&q->pending, struct txbuf_chain,
					     q_node))) {
		/*
		 * User space closed the socket (sock_orphan()): the unsent
		 * rest of every chain is dropped, as close() drops what a
		 * blocked writer had not written yet.
		 */
		if (sock_flag(q->sk, SOCK_DEAD)) {
			txbuf_chain_handover(q, c, -ECONNABORTED);
			continue;
		}
		ret = txbuf_chain_sendmsg(q, c, sock);
		if (ret > 0) {
			if (c->sent) {
				c->flags |= TXBUF_COMPL_CONTINUED;
				atomic64_inc(&txbuf_g.continuations);
			}
			txbuf_chain_advance(c, ret);
			progress = true;
			q->retry_ms = 0;
			if (c->sent == c->total)
				txbuf_chain_handover(q, c, 0);
			continue;
		}
		if (ret == 0 || ret == -EAGAIN) {
			/*
			 * The socket's next EPOLLOUT wakes q->wait; the timer
			 * is a backstop (and notices a close()).
			 */
			atomic64_inc(&txbuf_g.stalls);
			WRITE_ONCE(q->backoff, progress ? 0 : 1);
			q->retry_ms = clamp_t(unsigned int, q->retry_ms * 2,
					      TXBUF_RETRY_MIN_MS,
					      TXBUF_RETRY_MAX_MS);
			queue_delayed_work(txbuf_wq, &q->dwork,
					   msecs_to_jiffies(q->retry_ms));
			return;
		}
		/* Closed under us: TCP said EPIPE, the cause is the close. */
		if (sock_flag(q->sk, SOCK_DEAD))
			ret = -ECONNABORTED;
		txbuf_chain_handover(q, c, ret);
	}
}

/* ---------------------------------------------------------------------
 * The device
 */

static int txbuf_check_sock(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (!sk || sk->sk_type != SOCK_STREAM ||
	    sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6))
		return -EPROTONOSUPPORT;
	/*
	 * kTLS, sockmap and friends stack their own send path and callbacks
	 * on TCP's; a chain's msg_ubuf is for TCP's alone.
	 */
	if (inet_csk(sk)->icsk_ulp_ops || rcu_access_pointer(sk->sk_user_data))
		return -EOPNOTSUPP;
	if (!((1 << READ_ONCE(sk->sk_state)) &
	      (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT)))
		return -ENOTCONN;
	return 0;
}

static int txbuf_reserve(struct txbuf_ctx *ctx, u64 total)
{
	if (atomic_read(&ctx->chains) + READ_ONCE(ctx->nr_done) >=
	    READ_ONCE(max_chains_per_fd))
		return -ENOBUFS;
	if (atomic64_add_return(total, &ctx->pinned) > READ_ONCE(ctx->cap)) {
		atomic64_sub(total, &ctx->pinned);
		return -ENOBUFS;
	}
	if (atomic64_add_return(total, &txbuf_g.pinned) >
	    READ_ONCE(max_pinned_total)) {
		atomic64_sub(total, &txbuf_g.pinned);
		atomic64_sub(total, &ctx->pinned);
		return -ENOBUFS;
	}
	return 0;
}

static struct txbuf_chain *txbuf_chain_alloc(struct txbuf_ctx *ctx,
					     const struct txbuf_send *req,
					     u64 total, unsigned long max_bvec)
{
	struct txbuf_chain *c;

	c = kzalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);
	if (!c)
		return NULL;
	c->rec = kzalloc(sizeof(*c->rec), GFP_KERNEL_ACCOUNT);
	c->bvec = kvmalloc_array(max_bvec, sizeof(*c->bvec),
				 GFP_KERNEL_ACCOUNT);
	if (!c->rec || !c->bvec) {
		kfree(c->rec);
		kvfree(c->bvec);
		kfree(c);
		return NULL;
	}
	c->max_bvec = max_bvec;
	txbuf_ubuf_init(&c->ubuf);
	refcount_set(&c->ubuf.refcnt, 1);	/* the sender's */
	/* Without these, no callbacks come or TCP copies on first transmit. */
	c->ubuf.flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	c->ctx = ctx;
	refcount_inc(&ctx->refs);
	__module_get(THIS_MODULE);
	INIT_LIST_HEAD(&c->q_node);
	INIT_LIST_HEAD(&c->ctx_node);
	INIT_LIST_HEAD(&c->live_node);
	INIT_WORK(&c->free_work, txbuf_chain_free_work);
	c->cookie = req->cookie;
	c->managed = READ_ONCE(managed_frags);
	c->debug_id = atomic_inc_return(&txbuf_debug_ids);
	c->total = total;
	if (req->flags & TXBUF_SEND_STAGE_SMALL)
		c->stage_below = UINT_MAX;
	else if (req->flags & TXBUF_SEND_REF_SMALL)
		c->stage_below = 0;
	else
		c->stage_below = READ_ONCE(stage_threshold);
	atomic_inc(&ctx->chains);
	atomic64_inc(&txbuf_g.chains);
	return c;
}

/* Sum of the reference counts of the folios behind the chain's bio_vecs. */
static u64 txbuf_chain_refs(const struct txbuf_chain *c)
{
	unsigned int i;
	u64 sum = 0;

	for (i = 0; i < c->nr_bvec; i++)
		sum += folio_ref_count(page_folio(c->bvec[i].bv_page));
	return sum;
}

static long txbuf_ioctl_send(struct txbuf_ctx *ctx,
			     struct txbuf_send __user *arg)
{
	u64 start_ns = ktime_get_ns();
	unsigned long max_bvec;
	struct txbuf_send req;
	struct txbuf_seg *segs;
	struct txbuf_chain *c;
	struct txbuf_sockq *q;
	struct socket *sock;
	u64 total;
	int err;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if ((req.flags & ~TXBUF_SEND_FLAGS_ALL) || req.reserved ||
	    (req.flags & TXBUF_SEND_FLAGS_ALL) == TXBUF_SEND_FLAGS_ALL ||
	    !req.nr_segs)
		return -EINVAL;
	if (req.nr_segs > TXBUF_MAX_SEGS)
		return -E2BIG;
	if (!IS_ALIGNED(req.segs, sizeof(u64)))
		return -EFAULT;
	segs = vmemdup_user(u64_to_user_ptr(req.segs),
			    array_size(req.nr_segs, sizeof(*segs)));
	if (IS_ERR(segs))
		return PTR_ERR(segs);
	err = txbuf_validate(segs, req.nr_segs, READ_ONCE(ctx->cap), &total,
			     &max_bvec);
	if (err)
		goto out_segs;

	sock = sockfd_lookup(req.sock_fd, &err);
	if (!sock)
		goto out_segs;
	err = txbuf_check_sock(sock);
	if (err)
		goto out_sock;
	err = txbuf_reserve(ctx, total);
	if (err)
		goto out_sock;
	c = txbuf_chain_alloc(ctx, &req, total, max_bvec);
	if (!c) {
		atomic64_sub(total, &txbuf_g.pinned);
		atomic64_sub(total, &ctx->pinned);
		err = -ENOMEM;
		goto out_sock;
	}
	c->start_ns = start_ns;
	err = txbuf_chain_build(c, segs, req.nr_segs);
	if (err)
		goto out_chain;
	c->refs_built = txbuf_chain_refs(c);
	spin_lock(&ctx->lock);
	list_add_tail(&c->live_node, &ctx->live);
	spin_unlock(&ctx->lock);
	q = txbuf_sockq_get(sock);
	if (IS_ERR(q)) {
		err = PTR_ERR(q);
		goto out_chain;
	}
	atomic64_add(c->bytes_staged, &txbuf_g.bytes_staged);
	atomic64_add(c->bytes_ref, &txbuf_g.bytes_referenced);
	atomic64_inc(&txbuf_g.sends);
	trace_txbuf_chain_get(c->debug_id, c->cookie, c->total, req.nr_segs,
			      c->nr_bvec);

	mutex_lock(&q->lock);
	refcount_inc(&q->refs);			/* the chain's */
	spin_lock(&ctx->lock);
	c->q = q;
	list_add_tail(&c->ctx_node, &ctx->pending);
	spin_unlock(&ctx->lock);
	list_add_tail(&c->q_node, &q->pending);
	txbuf_sockq_push(q, sock);		/* c may be gone after this */
	mutex_unlock(&q->lock);
	txbuf_sockq_put(q);
	sockfd_put(sock);
	kvfree(segs);
	return 0;

out_chain:
	txbuf_chain_destroy(c);
out_sock:
	sockfd_put(sock);
out_segs:
	kvfree(segs);
	return err;
}

/*
 * Copy the first @len bytes of the statistics to @arg: the prefix this
 * module knows, zeroes past it (the append-only rule of struct txbuf_stats).
 */
static long txbuf_ioctl_stats(struct txbuf_ctx *ctx, void __user *arg,
			      size_t len)
{
	struct txbuf_stats st = {};
	size_t n = min(len, sizeof(st));

	BUILD_BUG_ON(sizeof(st) < TXBUF_STATS_SIZE_VER0 ||
		     sizeof(st) % sizeof(u64));
	BUILD_BUG_ON(offsetof(struct txbuf_stats, write_space_kicks) +
		     sizeof(u64) != TXBUF_STATS_SIZE_VER0);
	if (len < sizeof(u64) || len % sizeof(u64))
		return -EINVAL;

	st.chains_in_flight = atomic64_read(&txbuf_g.chains);
	st.pinned_bytes = atomic64_read(&txbuf_g.pinned);
	st.kmalloc_objs = atomic64_read(&txbuf_g.kmalloc_objs);
	st.stage_pages = atomic64_read(&txbuf_g.stage_pages);
	st.file_folios = atomic64_read(&txbuf_g.file_folios);
	st.user_pages = atomic64_read(&txbuf_g.user_pages);
	st.sends = atomic64_read(&txbuf_g.sends);
	st.completions = atomic64_read(&txbuf_g.completions);
	st.completions_zerocopy = atomic64_read(&txbuf_g.completions_zerocopy);
	st.completions_copied = atomic64_read(&txbuf_g.completions_copied);
	st.continuations = atomic64_read(&txbuf_g.continuations);
	st.send_errors = atomic64_read(&txbuf_g.send_errors);
	st.chain_errors = atomic64_read(&txbuf_g.chain_errors);
	st.bytes_sent = atomic64_read(&txbuf_g.bytes_sent);
	st.bytes_staged = atomic64_read(&txbuf_g.bytes_staged);
	st.bytes_referenced = atomic64_read(&txbuf_g.bytes_referenced);
	st.fd_chains_in_flight = atomic_read(&ctx->chains);
	st.fd_pinned_bytes = atomic64_read(&ctx->pinned);
	st.fd_pinned_cap = READ_ONCE(ctx->cap);
	st.fd_completions_ready = READ_ONCE(ctx->nr_done);
	st.stage_threshold = READ_ONCE(stage_threshold);
	st.max_pinned_per_fd = min(READ_ONCE(max_pinned_per_fd),
				   TXBUF_PINNED_LIMIT);
	st.max_pinned_total = READ_ONCE(max_pinned_total);
	st.completions_unsent = atomic64_read(&txbuf_g.completions_unsent);
	st.stalls = atomic64_read(&txbuf_g.stalls);
	st.write_space_kicks = atomic64_read(&txbuf_g.write_space_kicks);
	if (copy_to_user(arg, &st, n))
		return -EFAULT;
	if (len > n && clear_user(arg + n, len - n))
		return -EFAULT;
	return sizeof(st);
}

/* TXBUF_IOC_DEBUG_FILE_REFS: the folios of a file range (UAPI header). */
static int txbuf_debug_file_refs(struct txbuf_debug_refs *d)
{
	struct file *file;
	u64 pos, end;
	int err = 0;

	file = fget(d->fd);
	if (!file)
		return -EBADF;
	if (!S_ISREG(file_inode(file)->i_mode) ||
	    check_add_overflow(d->offset, d->len, &end)) {
		err = -EINVAL;
		goto out;
	}
	d->pages = 0;
	d->refs = 0;
	for (pos = d->offset; pos < end;) {
		struct folio *folio;

		/* NULL when absent on 6.1, ERR_PTR(-ENOENT) later. */
		folio = filemap_get_folio(file->f_mapping, pos >> PAGE_SHIFT);
		if (IS_ERR_OR_NULL(folio)) {
			pos = round_down(pos, PAGE_SIZE) + PAGE_SIZE;
			continue;
		}
		d->pages++;
		d->refs += folio_ref_count(folio) - 1;	/* not ours */
		pos = folio_pos(folio) + folio_size(folio);
		folio_put(folio);
		cond_resched();
	}
out:
	fput(file);
	return err;
}

/*
 * The debug ioctls (UAPI header): who holds the pages behind a chain in
 * flight.  Under ctx.lock a chain on ctx->live is not released, so its
 * bio_vecs and everything they point at stay.
 */
static long txbuf_ioctl_debug_refs(struct txbuf_ctx *ctx, unsigned int cmd,
				   struct txbuf_debug_refs __user *arg)
{
	struct txbuf_debug_refs d;
	struct txbuf_chain *c;
	long err = -ENOENT;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&d, arg, sizeof(d)))
		return -EFAULT;
	if (cmd == TXBUF_IOC_DEBUG_FILE_REFS) {
		err = txbuf_debug_file_refs(&d);
	} else {
		spin_lock(&ctx->lock);
		list_for_each_entry(c, &ctx->live, live_node) {
			if (c->cookie != d.cookie)
				continue;
			d.pages = c->nr_bvec;
			d.refs = txbuf_chain_refs(c);
			d.refs_built = c->refs_built;
			d.sent = READ_ONCE(c->sent);
			d.total = c->total;
			d.managed = c->managed;
			err = 0;
			break;
		}
		spin_unlock(&ctx->lock);
	}
	if (!err && copy_to_user(arg, &d, sizeof(d)))
		err = -EFAULT;
	return err;
}

static long txbuf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct txbuf_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;
	u64 cap;

	switch (cmd) {
	case TXBUF_IOC_SEND:
		ret = txbuf_ioctl_send(ctx, uarg);
		if (ret)
			atomic64_inc(&txbuf_g.send_errors);
		return ret;
	case TXBUF_IOC_STATS_VER0:
		/* Binaries from before TXBUF_IOC_STATS_LEN: 256 bytes, 0. */
		ret = txbuf_ioctl_stats(ctx, uarg, _IOC_SIZE(cmd));
		return ret < 0 ? ret : 0;
	case TXBUF_IOC_SET_PINNED_CAP:
		if (copy_from_user(&cap, uarg, sizeof(cap)))
			return -EFAULT;
		if (!cap || cap > min(READ_ONCE(max_pinned_per_fd),
				      TXBUF_PINNED_LIMIT))
			return -EINVAL;
		WRITE_ONCE(ctx->cap, cap);
		return 0;
	case TXBUF_IOC_DEBUG_CHAIN_REFS:
	case TXBUF_IOC_DEBUG_FILE_REFS:
		return txbuf_ioctl_debug_refs(ctx, cmd, uarg);
	default:
		/* The size of TXBUF_IOC_STATS_LEN(len) is the caller's. */
		if (_IOC_TYPE(cmd) == TXBUF_IOC_MAGIC &&
		    _IOC_NR(cmd) == TXBUF_IOC_STATS_NR &&
		    _IOC_DIR(cmd) == _IOC_READ)
			return txbuf_ioctl_stats(ctx, uarg, _IOC_SIZE(cmd));
		return -ENOTTY;
	}
}

static ssize_t txbuf_read(struct file *file, char __user *buf, size_t count,
			  loff_t *ppos)
{
	struct txbuf_ctx *ctx = file->private_data;
	size_t max = count / sizeof(struct txbuf_completion);
	struct txbuf_record *rec, *tmp;
	LIST_HEAD(batch);
	size_t n = 0, copied = 0;
	int err;

	if (!max)
		return -EINVAL;
	max = min_t(size_t, max, TXBUF_READ_BATCH);
	for (;;) {
		spin_lock(&ctx->lock);
		while (n < max && !list_empty(&ctx->done)) {
			list_move_tail(ctx->done.next, &batch);
			ctx->nr_done--;
			n++;
		}
		spin_unlock(&ctx->lock);
		if (n)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		err = wait_event_interruptible(ctx->wq,
					       READ_ONCE(ctx->nr_done) > 0);
		if (err)
			return err;
	}
	list_for_each_entry_safe(rec, tmp, &batch, node) {
		if (copy_to_user(buf + copied, &rec->c, sizeof(rec->c)))
			break;
		copied += sizeof(rec->c);
		list_del(&rec->node);
		kfree(rec);
	}
	if (!list_empty(&batch)) {
		/* Fault: give back what was not delivered, in order. */
		spin_lock(&ctx->lock);
		list_for_each_entry(rec, &batch, node)
			ctx->nr_done++;
		list_splice(&batch, &ctx->done);
		spin_unlock(&ctx->lock);
		if (!copied)
			return -EFAULT;
	}
	return copied;
}

static __poll_t txbuf_poll(struct file *file, struct poll_table_struct *wait)
{
	struct txbuf_ctx *ctx = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &ctx->wq, wait);
	if (READ_ONCE(ctx->nr_done))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (atomic64_read(&ctx->pinned) < READ_ONCE(ctx->cap))
		mask |= EPOLLOUT | EPOLLWRNORM;
	return mask;
}

static int txbuf_open(struct inode *inode, struct file *file)
{
	struct txbuf_ctx *ctx;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	refcount_set(&ctx->refs, 1);
	spin_lock_init(&ctx->lock);
	INIT_LIST_HEAD(&ctx->done);
	INIT_LIST_HEAD(&ctx->pending);
	INIT_LIST_HEAD(&ctx->live);
	init_waitqueue_head(&ctx->wq);
	atomic64_set(&ctx->pinned, 0);
	atomic_set(&ctx->chains, 0);
	ctx->cap = min(READ_ONCE(max_pinned_per_fd), TXBUF_PINNED_LIMIT);
	file->private_data = ctx;
	return stream_open(inode, file);
}

/*
 * Chains that have not sent a byte yet are cancelled (-ECANCELED); a chain
 * that is partly on the wire is finished, or the byte stream would be
 * corrupt.  Completions that come later are absorbed by txbuf_ctx_post().
 */
static int txbuf_release(struct inode *inode, struct file *file)
{
	struct txbuf_ctx *ctx = file->private_data;
	struct txbuf_record *rec, *tmp;
	struct txbuf_chain *c;
	LIST_HEAD(done);

	spin_lock(&ctx->lock);
	ctx->closed = true;
	list_splice_init(&ctx->done, &done);
	ctx->nr_done = 0;
	list_for_each_entry(c, &ctx->pending, ctx_node) {
		WRITE_ONCE(c->cancelled, true);
		/* c is pending, so it holds a reference on c->q. */
		mod_delayed_work(txbuf_wq, &c->q->dwork, 0);
	}
	spin_unlock(&ctx->lock);
	list_for_each_entry_safe(rec, tmp, &done, node)
		kfree(rec);
	txbuf_ctx_put(ctx);
	return 0;
}

static const struct file_operations txbuf_fops = {
	.owner		= THIS_MODULE,
	.open		= txbuf_open,
	.release	= txbuf_release,
	.read		= txbuf_read,
	.poll		= txbuf_poll,
	.unlocked_ioctl	= txbuf_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice txbuf_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= TXBUF_DEVICE_NAME,
	.fops	= &txbuf_fops,
	/*
	 * Owner and group only: a sender pins memory and holds socket
	 * buffers.  kmod-shim/60-txbuf.rules gives the node to the group
	 * txbuf, the group txbufd runs in (docs/KMOD.md, "Who may use it").
	 */
	.mode	= 0660,
};

static int __init txbuf_init(void)
{
	int err;

	txbuf_wq = alloc_workqueue("txbuf", WQ_UNBOUND, 0);
	if (!txbuf_wq)
		return -ENOMEM;
	err = misc_register(&txbuf_misc);
	if (err) {
		destroy_workqueue(txbuf_wq);
		return err;
	}
	pr_info("ready: /dev/%s, stage_threshold=%u, %s\n",
		TXBUF_DEVICE_NAME, stage_threshold, TXBUF_UBUF_KIND);
	return 0;
}

/*
 * Runs only when nothing holds the module: every open file and every chain
 * and socket queue holds a reference, so rmmod fails with EBUSY while
 * anything is in flight.  What is left are the last lines of work
 * functions that dropped those references: wait for them.
 */
static void __exit txbuf_exit(void)
{
	misc_deregister(&txbuf_misc);
	rcu_barrier();
	destroy_workqueue(txbuf_wq);
	WARN_ON(atomic64_read(&txbuf_g.chains) ||
		atomic64_read(&txbuf_g.pinned));
}

module_init(txbuf_init);
module_exit(txbuf_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("txbuf project");
MODULE_DESCRIPTION("Send a compound message (kmalloc'd objects, page-cache folios, pinned user pages) in one sendmsg with one destructor");
