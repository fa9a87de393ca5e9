// internal/uring_compat.h: io_uring definitions Debian's liburing 2.3 lacks.
//
// The running kernel (6.x) knows them; we probe at run time before use.
//
// Thread-safety: constants only.
#ifndef TXBUF_COMMON_INTERNAL_URING_COMPAT_H_
#define TXBUF_COMMON_INTERNAL_URING_COMPAT_H_

#include <liburing.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#ifndef IORING_CQE_F_NOTIF
#define IORING_CQE_F_NOTIF (1U << 3)
#endif
#ifndef IORING_RECVSEND_FIXED_BUF
#define IORING_RECVSEND_FIXED_BUF (1U << 2)
#endif

#endif  // TXBUF_COMMON_INTERNAL_URING_COMPAT_H_
