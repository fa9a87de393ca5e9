/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the txbuf module (events/txbuf/ in tracefs).
 *
 * The life of a chain, as net/rxrpc traces its calls and skbs:
 *   txbuf_chain_get       TXBUF_IOC_SEND built a chain and hands it over
 *   txbuf_chain_put       one reference on the chain's ubuf_info dropped
 *                         (by the stack per skb, or the sender's own)
 *   txbuf_chain_complete  the destructor ran: the record user space reads
 * A chain is named by its debug_id, unique since the module was loaded.
 * The events take plain values, never the chain: a put may be the last
 * reference but one, so the chain may be gone when the event is recorded.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM txbuf

#if !defined(_TXBUF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TXBUF_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(txbuf_chain_get,
	    TP_PROTO(unsigned int debug_id, u64 cookie, u64 bytes,
		     unsigned int nr_segs, unsigned int nr_bvec),
	    TP_ARGS(debug_id, cookie, bytes, nr_segs, nr_bvec),
	    TP_STRUCT__entry(__field(unsigned int, debug_id)
			     __field(unsigned int, nr_segs)
			     __field(unsigned int, nr_bvec)
			     __field(u64, cookie)
			     __field(u64, bytes)),
	    TP_fast_assign(__entry->debug_id = debug_id;
			   __entry->nr_segs = nr_segs;
			   __entry->nr_bvec = nr_bvec;
			   __entry->cookie = cookie;
			   __entry->bytes = bytes;),
	    TP_printk("c=%08x cookie=%llu bytes=%llu segs=%u bvecs=%u",
		      __entry->debug_id, __entry->cookie, __entry->bytes,
		      __entry->nr_segs, __entry->nr_bvec)
);

TRACE_EVENT(txbuf_chain_put,
	    TP_PROTO(unsigned int debug_id, u64 cookie, int refs,
		     bool zerocopy),
	    TP_ARGS(debug_id, cookie, refs, zerocopy),
	    TP_STRUCT__entry(__field(unsigned int, debug_id)
			     __field(int, refs)
			     __field(u64, cookie)
			     __field(bool, zerocopy)),
	    TP_fast_assign(__entry->debug_id = debug_id;
			   __entry->refs = refs;
			   __entry->cookie = cookie;
			   __entry->zerocopy = zerocopy;),
	    TP_printk("c=%08x cookie=%llu r=%d zerocopy=%u",
		      __entry->debug_id, __entry->cookie, __entry->refs,
		      __entry->zerocopy)
);

TRACE_EVENT(txbuf_chain_complete,
	    TP_PROTO(unsigned int debug_id, u64 cookie, u64 bytes,
		     u64 latency_ns, int status, u32 flags, bool copied),
	    TP_ARGS(debug_id, cookie, bytes, latency_ns, status, flags,
		    copied),
	    TP_STRUCT__entry(__field(unsigned int, debug_id)
			     __field(int, status)
			     __field(u64, cookie)
			     __field(u64, bytes)
			     __field(u64, latency_ns)
			     __field(u32, flags)
			     __field(bool, copied)),
	    TP_fast_assign(__entry->debug_id = debug_id;
			   __entry->status = status;
			   __entry->cookie = cookie;
			   __entry->bytes = bytes;
			   __entry->latency_ns = latency_ns;
			   __entry->flags = flags;
			   __entry->copied = copied;),
	    TP_printk("c=%08x cookie=%llu bytes=%llu copied=%u status=%d flags=%x latency_ns=%llu",
		      __entry->debug_id, __entry->cookie, __entry->bytes,
		      __entry->copied, __entry->status, __entry->flags,
		      __entry->latency_ns)
);

#endif /* _TXBUF_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE txbuf_trace
#include <trace/define_trace.h>
