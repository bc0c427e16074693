/*
 * Host file operations Node's fs does not offer, for the reference's `file`
 * protocol: SEEK_DATA/SEEK_HOLE (holes for qemu-img map), fallocate (punch
 * holes on discard, zero ranges, preallocation=falloc).
 *
 * OFD byte-range locks (F_OFD_SETLK / F_OFD_GETLK) for image locking that
 * interoperates with QEMU's file-posix, BLKGETSIZE64 for host devices and the
 * CD-ROM drive status for host_cdrom.
 *
 * Every function takes a file descriptor owned by the caller and returns a
 * number, or throws an Error whose `code` is the errno name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/cdrom.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, strerrorname_np(err) ? strerrorname_np(err) : "EIO", msg);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t n, int64_t *out) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (napi_get_value_int64(env, argv[i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "arguments must be integers");
      return -1;
    }
  }
  return 0;
}

static napi_value num(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

/* seek(fd, offset, wantData): next data (or hole) at or after offset; -1 when there is none (ENXIO). */
static napi_value seek(napi_env env, napi_callback_info info) {
  int64_t a[3];
  if (get_args(env, info, 3, a)) return NULL;
  off_t r = lseek((int)a[0], (off_t)a[1], a[2] ? SEEK_DATA : SEEK_HOLE);
  if (r < 0) {
    if (errno == ENXIO) return num(env, -1);
    return throw_errno(env, errno, "lseek");
  }
  return num(env, r);
}

/* fallocate(fd, mode, offset, length) with mode 0 = allocate, 1 = punch hole, 2 = zero range */
static napi_value do_fallocate(napi_env env, napi_callback_info info) {
  int64_t a[4];
  if (get_args(env, info, 4, a)) return NULL;
  int mode = 0;
  if (a[1] == 1) mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  else if (a[1] == 2) mode = FALLOC_FL_ZERO_RANGE;
  if (fallocate((int)a[0], mode, (off_t)a[2], (off_t)a[3]) < 0) return throw_errno(env, errno, "fallocate");
  return num(env, 0);
}

/*
 * ofdLock(fd, start, length, type): type 0 unlocks, 1 takes a shared (read)
 * lock, 2 an exclusive (write) lock, never waiting. Returns 0, or -1 when
 * another open file description holds a conflicting lock (EAGAIN/EACCES).
 */
static napi_value ofd_lock(napi_env env, napi_callback_info info) {
  int64_t a[4];
  if (get_args(env, info, 4, a)) return NULL;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)a[1];
  fl.l_len = (off_t)a[2];
  fl.l_type = a[3] == 0 ? F_UNLCK : a[3] == 1 ? F_RDLCK : F_WRLCK;
  if (fcntl((int)a[0], F_OFD_SETLK, &fl) < 0) {
    if (errno == EAGAIN || errno == EACCES) return num(env, -1);
    return throw_errno(env, errno, "fcntl(F_OFD_SETLK)");
  }
  return num(env, 0);
}

/*
 * ofdTest(fd, start, length, type): would a lock of `type` (1 shared, 2
 * exclusive) be granted? Returns 0 if so, else the type of the lock that
 * stands in the way (1 shared, 2 exclusive). Locks of this descriptor never
 * conflict with themselves.
 */
static napi_value ofd_test(napi_env env, napi_callback_info info) {
  int64_t a[4];
  if (get_args(env, info, 4, a)) return NULL;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)a[1];
  fl.l_len = (off_t)a[2];
  fl.l_type = a[3] == 1 ? F_RDLCK : F_WRLCK;
  if (fcntl((int)a[0], F_OFD_GETLK, &fl) < 0) return throw_errno(env, errno, "fcntl(F_OFD_GETLK)");
  return num(env, fl.l_type == F_UNLCK ? 0 : fl.l_type == F_RDLCK ? 1 : 2);
}

/* blockDeviceSize(fd): the size in bytes of a block device (BLKGETSIZE64). */
static napi_value block_device_size(napi_env env, napi_callback_info info) {
  int64_t a[1];
  if (get_args(env, info, 1, a)) return NULL;
  uint64_t size = 0;
  if (ioctl((int)a[0], BLKGETSIZE64, &size) < 0) return throw_errno(env, errno, "ioctl(BLKGETSIZE64)");
  return num(env, (int64_t)size);
}

/*
 * cdromStatus(fd): the drive status (CDROM_DRIVE_STATUS, CDSL_CURRENT), e.g.
 * 4 = CDS_DISC_OK; -1 when the device does not answer as a CD-ROM drive.
 */
static napi_value cdrom_status(napi_env env, napi_callback_info info) {
  int64_t a[1];
  if (get_args(env, info, 1, a)) return NULL;
  int r = ioctl((int)a[0], CDROM_DRIVE_STATUS, CDSL_CURRENT);
  return num(env, r < 0 ? -1 : r);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "seek", NULL, seek, NULL, NULL, NULL, napi_default, NULL },
    { "fallocate", NULL, do_fallocate, NULL, NULL, NULL, napi_default, NULL },
    { "ofdLock", NULL, ofd_lock, NULL, NULL, NULL, napi_default, NULL },
    { "ofdTest", NULL, ofd_test, NULL, NULL, NULL, napi_default, NULL },
    { "blockDeviceSize", NULL, block_device_size, NULL, NULL, NULL, napi_default, NULL },
    { "cdromStatus", NULL, cdrom_status, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
