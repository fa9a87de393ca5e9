/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Compile check: the UAPI header is valid C99 on its own, with the layout
 * the module and C++ code rely on.  Built by kmod-shim/CMakeLists.txt.
 */
#include <stddef.h>

#include "uapi/linux/txbuf.h"

#define TXBUF_CHECK(name, cond) typedef char txbuf_check_##name[(cond) ? 1 : -1]

TXBUF_CHECK(seg_size, sizeof(struct txbuf_seg) == 32);
TXBUF_CHECK(send_size, sizeof(struct txbuf_send) == 32);
TXBUF_CHECK(completion_size, sizeof(struct txbuf_completion) == 32);
TXBUF_CHECK(stats_size, sizeof(struct txbuf_stats) >= TXBUF_STATS_SIZE_VER0 &&
	    sizeof(struct txbuf_stats) % 8 == 0);
TXBUF_CHECK(stats_ver0_end, offsetof(struct txbuf_stats, write_space_kicks) + 8 ==
	    TXBUF_STATS_SIZE_VER0);
/* Binaries built before the size-prefixed ABI use this number. */
TXBUF_CHECK(stats_ver0_cmd, TXBUF_IOC_STATS_VER0 == 0x8100b802u);
TXBUF_CHECK(stats_len_cmd, TXBUF_IOC_STATS_LEN(208) == 0x80d0b804u);
TXBUF_CHECK(seg_len_offset, offsetof(struct txbuf_seg, len) == 24);
TXBUF_CHECK(send_nr_offset, offsetof(struct txbuf_send, nr_segs) == 24);
TXBUF_CHECK(debug_refs_size, sizeof(struct txbuf_debug_refs) == 72);

int txbuf_uapi_c_check(void);

int txbuf_uapi_c_check(void)
{
	return TXBUF_IOC_SEND != TXBUF_IOC_STATS_LEN(sizeof(struct txbuf_stats));
}
