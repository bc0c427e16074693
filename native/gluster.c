/*
 * libgfapi for the reference's gluster protocol driver: a volume "virtual
 * mount" (glfs_t) and its open files (glfs_fd_t), as N-API externals.
 *
 * Every libgfapi call that may block (glfs_init fetches the volfile and
 * connects the bricks; the I/O calls go over the network) runs on the libuv
 * thread pool through napi_async_work and settles a Promise: a value on
 * success, or an Error whose `code` is the errno name, `errno` its number and
 * `syscall` the glfs_* call that failed. Buffers given to pread/pwrite are held
 * by a reference until the call returns.
 *
 * This target is built only when <glusterfs/api/glfs.h> exists (binding.gyp).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glusterfs/api/glfs.h>
#include <node_api.h>

enum op {
  OP_CONNECT, OP_FINI, OP_OPEN, OP_PREAD, OP_PWRITE, OP_FSYNC, OP_FTRUNCATE,
  OP_FSTAT, OP_CLOSE, OP_DISCARD, OP_ZEROFILL, OP_UNLINK, OP_RENAME
};

static const char *const op_name[] = {
  "glfs_init", "glfs_fini", "glfs_open", "glfs_pread", "glfs_pwrite", "glfs_fsync",
  "glfs_ftruncate", "glfs_fstat", "glfs_close", "glfs_discard", "glfs_zerofill",
  "glfs_unlink", "glfs_rename"
};

#define MAX_SERVERS 16

struct server {
  char *transport;
  char *host;
  int port;
};

struct job {
  enum op op;
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer_ref;
  glfs_t *fs;
  glfs_fd_t *fd;
  /* connect */
  char *volume;
  struct server servers[MAX_SERVERS];
  int nservers;
  char *logfile;
  int debug;
  /* open / unlink / rename */
  char *path;
  char *path2;
  int flags;
  int create;
  /* I/O */
  void *data;
  size_t length;
  int64_t offset;
  /* results */
  int64_t result;
  int err;
  const char *failed;
};

static void free_job(napi_env env, struct job *j) {
  free(j->volume);
  for (int i = 0; i < j->nservers; i++) {
    free(j->servers[i].transport);
    free(j->servers[i].host);
  }
  free(j->logfile);
  free(j->path);
  free(j->path2);
  if (j->buffer_ref) napi_delete_reference(env, j->buffer_ref);
  if (j->work) napi_delete_async_work(env, j->work);
  free(j);
}

static void execute(napi_env env, void *data) {
  (void)env;
  struct job *j = data;
  j->failed = op_name[j->op];
  errno = 0;
  switch (j->op) {
  case OP_CONNECT: {
    glfs_t *fs = glfs_new(j->volume);
    if (!fs) { j->err = errno ? errno : ENOMEM; j->failed = "glfs_new"; return; }
    for (int i = 0; i < j->nservers; i++) {
      if (glfs_set_volfile_server(fs, j->servers[i].transport, j->servers[i].host, j->servers[i].port) < 0) {
        j->err = errno ? errno : EINVAL;
        j->failed = "glfs_set_volfile_server";
        glfs_fini(fs);
        return;
      }
    }
    if (glfs_set_logging(fs, j->logfile ? j->logfile : "-", j->debug) < 0) {
      j->err = errno ? errno : EINVAL;
      j->failed = "glfs_set_logging";
      glfs_fini(fs);
      return;
    }
    if (glfs_init(fs) < 0) {
      j->err = errno ? errno : EIO;
      glfs_fini(fs);
      return;
    }
    j->fs = fs;
    return;
  }
  case OP_FINI:
    if (glfs_fini(j->fs) < 0) j->err = errno ? errno : EIO;
    return;
  case OP_OPEN:
    if (j->create) {
      j->fd = glfs_creat(j->fs, j->path, j->flags, 0644);
      j->failed = "glfs_creat";
    } else {
      j->fd = glfs_open(j->fs, j->path, j->flags);
    }
    if (!j->fd) j->err = errno ? errno : EIO;
    return;
  case OP_PREAD: {
    size_t done = 0;
    while (done < j->length) {
      ssize_t n = glfs_pread(j->fd, (char *)j->data + done, j->length - done, j->offset + (int64_t)done, 0, NULL);
      if (n < 0) { j->err = errno ? errno : EIO; return; }
      if (n == 0) break; /* end of file: the caller zero-fills */
      done += (size_t)n;
    }
    j->result = (int64_t)done;
    return;
  }
  case OP_PWRITE: {
    size_t done = 0;
    while (done < j->length) {
      ssize_t n = glfs_pwrite(j->fd, (const char *)j->data + done, j->length - done, j->offset + (int64_t)done, 0, NULL, NULL);
      if (n < 0) { j->err = errno ? errno : EIO; return; }
      if (n == 0) { j->err = EIO; return; }
      done += (size_t)n;
    }
    j->result = (int64_t)done;
    return;
  }
  case OP_FSYNC:
    if (glfs_fsync(j->fd, NULL, NULL) < 0) j->err = errno ? errno : EIO;
    return;
  case OP_FTRUNCATE:
    if (glfs_ftruncate(j->fd, (off_t)j->offset, NULL, NULL) < 0) j->err = errno ? errno : EIO;
    return;
  case OP_FSTAT: {
    struct stat st;
    if (glfs_fstat(j->fd, &st) < 0) { j->err = errno ? errno : EIO; return; }
    j->result = (int64_t)st.st_size;
    return;
  }
  case OP_CLOSE:
    if (glfs_close(j->fd) < 0) j->err = errno ? errno : EIO;
    return;
  case OP_DISCARD:
    if (glfs_discard(j->fd, (off_t)j->offset, j->length) < 0) j->err = errno ? errno : EIO;
    return;
  case OP_ZEROFILL:
    if (glfs_zerofill(j->fd, (off_t)j->offset, (off_t)j->length) < 0) j->err = errno ? errno : EIO;
    return;
  case OP_UNLINK:
    if (glfs_unlink(j->fs, j->path) < 0) j->err = errno ? errno : EIO;
    return;
  case OP_RENAME:
    if (glfs_rename(j->fs, j->path, j->path2) < 0) j->err = errno ? errno : EIO;
    return;
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  struct job *j = data;
  napi_value v;
  if (status != napi_ok && !j->err) j->err = ECANCELED;
  if (j->err) {
    char msg[320];
    const char *name = strerrorname_np(j->err);
    snprintf(msg, sizeof msg, "%s: %s", j->failed, strerror(j->err));
    napi_value m, code, err, eno, sys;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, m, &err);
    napi_create_int32(env, j->err, &eno);
    napi_set_named_property(env, err, "errno", eno);
    napi_create_string_utf8(env, j->failed, NAPI_AUTO_LENGTH, &sys);
    napi_set_named_property(env, err, "syscall", sys);
    napi_reject_deferred(env, j->deferred, err);
  } else {
    switch (j->op) {
    case OP_CONNECT: napi_create_external(env, j->fs, NULL, NULL, &v); break;
    case OP_OPEN: napi_create_external(env, j->fd, NULL, NULL, &v); break;
    case OP_PREAD: case OP_PWRITE: case OP_FSTAT: napi_create_int64(env, j->result, &v); break;
    default: napi_get_undefined(env, &v); break;
    }
    napi_resolve_deferred(env, j->deferred, v);
  }
  free_job(env, j);
}

static napi_value start(napi_env env, struct job *j) {
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) { free_job(env, j); return NULL; }
  napi_create_string_utf8(env, op_name[j->op], NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value fail(napi_env env, struct job *j, const char *msg) {
  if (j) free_job(env, j);
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static int get_external(napi_env env, napi_value v, void **out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return -1;
  return napi_get_value_external(env, v, out) == napi_ok && *out ? 0 : -1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok ? 0 : -1;
}

static struct job *new_job(enum op op) {
  struct job *j = calloc(1, sizeof *j);
  if (j) j->op = op;
  return j;
}

/* connect(volume, [{transport, host, port}], logfile|null, debug) -> Promise<fs> */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) return fail(env, NULL, "connect(volume, servers, logfile, debug)");
  struct job *j = new_job(OP_CONNECT);
  if (!j) return fail(env, NULL, "out of memory");
  j->volume = get_string(env, argv[0]);
  if (!j->volume) return fail(env, j, "volume must be a string");
  uint32_t n;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || n == 0 || n > MAX_SERVERS) return fail(env, j, "servers must be an array of 1 to 16 entries");
  for (uint32_t i = 0; i < n; i++) {
    napi_value s, t, h, p;
    napi_get_element(env, argv[1], i, &s);
    napi_get_named_property(env, s, "transport", &t);
    napi_get_named_property(env, s, "host", &h);
    napi_get_named_property(env, s, "port", &p);
    j->servers[i].transport = get_string(env, t);
    j->servers[i].host = get_string(env, h);
    j->nservers = (int)i + 1;
    int64_t port;
    if (!j->servers[i].transport || !j->servers[i].host || get_i64(env, p, &port)) return fail(env, j, "a server needs transport, host and port");
    j->servers[i].port = (int)port;
  }
  napi_valuetype lt;
  napi_typeof(env, argv[2], &lt);
  if (lt == napi_string) j->logfile = get_string(env, argv[2]);
  int64_t debug;
  if (get_i64(env, argv[3], &debug)) return fail(env, j, "debug must be an integer");
  j->debug = (int)debug;
  return start(env, j);
}

/* fini(fs) */
static napi_value js_fini(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *j = new_job(OP_FINI);
  if (!j) return fail(env, NULL, "out of memory");
  if (argc < 1 || get_external(env, argv[0], (void **)&j->fs)) return fail(env, j, "fini(fs)");
  return start(env, j);
}

/* open(fs, path, readOnly, create) -> Promise<fd>; create makes the file (O_CREAT|O_TRUNC) */
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *j = new_job(OP_OPEN);
  if (!j) return fail(env, NULL, "out of memory");
  bool ro = false, create = false;
  if (argc < 4 || get_external(env, argv[0], (void **)&j->fs) || !(j->path = get_string(env, argv[1])) ||
      napi_get_value_bool(env, argv[2], &ro) != napi_ok || napi_get_value_bool(env, argv[3], &create) != napi_ok) {
    return fail(env, j, "open(fs, path, readOnly, create)");
  }
  j->create = create;
  j->flags = create ? (O_RDWR | O_CREAT | O_TRUNC) : (ro ? O_RDONLY : O_RDWR);
  return start(env, j);
}

static napi_value io(napi_env env, napi_callback_info info, enum op op) {
  napi_value argv[3];
  size_t argc = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *j = new_job(op);
  if (!j) return fail(env, NULL, "out of memory");
  bool isbuf = false;
  if (argc < 3 || get_external(env, argv[0], (void **)&j->fd) || napi_is_buffer(env, argv[1], &isbuf) != napi_ok || !isbuf ||
      get_i64(env, argv[2], &j->offset) || j->offset < 0) {
    return fail(env, j, "(fd, buffer, offset) with a Buffer and an offset >= 0");
  }
  napi_get_buffer_info(env, argv[1], &j->data, &j->length);
  napi_create_reference(env, argv[1], 1, &j->buffer_ref);
  return start(env, j);
}

static napi_value js_pread(napi_env env, napi_callback_info info) { return io(env, info, OP_PREAD); }
static napi_value js_pwrite(napi_env env, napi_callback_info info) { return io(env, info, OP_PWRITE); }

/* fd-only calls: fsync(fd), fstat(fd), close(fd); ftruncate(fd, len); discard/zerofill(fd, off, len) */
static napi_value fdop(napi_env env, napi_callback_info info, enum op op, size_t nums) {
  napi_value argv[3];
  size_t argc = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *j = new_job(op);
  if (!j) return fail(env, NULL, "out of memory");
  if (argc < 1 + nums || get_external(env, argv[0], (void **)&j->fd)) return fail(env, j, "expected an open gluster file");
  int64_t len = 0;
  if (nums >= 1 && (get_i64(env, argv[1], &j->offset) || j->offset < 0)) return fail(env, j, "offset must be an integer >= 0");
  if (nums >= 2) {
    if (get_i64(env, argv[2], &len) || len < 0) return fail(env, j, "length must be an integer >= 0");
    j->length = (size_t)len;
  }
  return start(env, j);
}

static napi_value js_fsync(napi_env env, napi_callback_info info) { return fdop(env, info, OP_FSYNC, 0); }
static napi_value js_fstat(napi_env env, napi_callback_info info) { return fdop(env, info, OP_FSTAT, 0); }
static napi_value js_close(napi_env env, napi_callback_info info) { return fdop(env, info, OP_CLOSE, 0); }
static napi_value js_ftruncate(napi_env env, napi_callback_info info) { return fdop(env, info, OP_FTRUNCATE, 1); }
static napi_value js_discard(napi_env env, napi_callback_info info) { return fdop(env, info, OP_DISCARD, 2); }
static napi_value js_zerofill(napi_env env, napi_callback_info info) { return fdop(env, info, OP_ZEROFILL, 2); }

/* unlink(fs, path); rename(fs, from, to) */
static napi_value pathop(napi_env env, napi_callback_info info, enum op op) {
  napi_value argv[3];
  size_t argc = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct job *j = new_job(op);
  if (!j) return fail(env, NULL, "out of memory");
  size_t need = op == OP_RENAME ? 3 : 2;
  if (argc < need || get_external(env, argv[0], (void **)&j->fs) || !(j->path = get_string(env, argv[1])) ||
      (op == OP_RENAME && !(j->path2 = get_string(env, argv[2])))) {
    return fail(env, j, "expected (fs, path[, path])");
  }
  return start(env, j);
}

static napi_value js_unlink(napi_env env, napi_callback_info info) { return pathop(env, info, OP_UNLINK); }
static napi_value js_rename(napi_env env, napi_callback_info info) { return pathop(env, info, OP_RENAME); }

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    { "connect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL },
    { "fini", NULL, js_fini, NULL, NULL, NULL, napi_default, NULL },
    { "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
    { "pread", NULL, js_pread, NULL, NULL, NULL, napi_default, NULL },
    { "pwrite", NULL, js_pwrite, NULL, NULL, NULL, napi_default, NULL },
    { "fsync", NULL, js_fsync, NULL, NULL, NULL, napi_default, NULL },
    { "fstat", NULL, js_fstat, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "ftruncate", NULL, js_ftruncate, NULL, NULL, NULL, napi_default, NULL },
    { "discard", NULL, js_discard, NULL, NULL, NULL, napi_default, NULL },
    { "zerofill", NULL, js_zerofill, NULL, NULL, NULL, napi_default, NULL },
    { "unlink", NULL, js_unlink, NULL, NULL, NULL, napi_default, NULL },
    { "rename", NULL, js_rename, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
