// SPDX-License-Identifier: MIT
//
// A tiny HTTP/1.1 file server for the download tests, with faults on cue. It serves ROOT/<last path
// segment> for GET and HEAD (Range: bytes=N- supported), adds the lines of ROOT/<file>.hdr to the
// response headers when that file exists (X-Linked-Etag...), answers one request per connection, and
// logs "METHOD PATH RANGE STATUS" per request (" auth" appended when an Authorization header came).
//
//   fault-server --root DIR --port-file FILE --log FILE [--fail-first N] [--cut-after BYTES] [--rate BYTES]
//
//   --fail-first N     the first N requests (any method) get HTTP 500
//   --cut-after BYTES  every GET body stops after BYTES bytes and the connection is closed
//   --rate BYTES       bodies go out at about BYTES per second (a slow link: speed and ETA show)
//
// It listens on 127.0.0.1 on a free port (written to --port-file once it listens) until killed.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *root = NULL, *port_file = NULL, *log_path = NULL;
    long fail_first = 0, cut_after = -1, rate = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--root")) root = argv[i + 1];
        else if (!strcmp(argv[i], "--port-file")) port_file = argv[i + 1];
        else if (!strcmp(argv[i], "--log")) log_path = argv[i + 1];
        else if (!strcmp(argv[i], "--fail-first")) fail_first = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--cut-after")) cut_after = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate")) rate = atol(argv[i + 1]);
        else {
            fprintf(stderr, "fault-server: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!root || !port_file || !log_path) {
        fprintf(stderr, "usage: fault-server --root DIR --port-file FILE --log FILE [--fail-first N] [--cut-after B] [--rate B]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    FILE *log = fopen(log_path, "a");
    if (!log) die(log_path);
    setvbuf(log, NULL, _IOLBF, 0);

    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
    if (listen(s, 16) != 0) die("listen");
    socklen_t al = sizeof addr;
    if (getsockname(s, (struct sockaddr *)&addr, &al) != 0) die("getsockname");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *pf = fopen(tmp, "w");
    if (!pf) die(tmp);
    fprintf(pf, "%d\n", ntohs(addr.sin_port));
    fclose(pf);
    if (rename(tmp, port_file) != 0) die("rename");

    long requests = 0;
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            die("accept");
        }
        char req[8192];
        size_t n = 0;
        while (n < sizeof req - 1) {
            ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
            if (r <= 0) break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n")) break;
        }
        req[n] = '\0';
        char method[16] = "", path[2048] = "";
        if (sscanf(req, "%15s %2047s", method, path) != 2) {
            close(c);
            continue;
        }
        long long range = -1;
        const char *rh = strcasestr(req, "\r\nRange: bytes=");
        if (rh) range = atoll(rh + 15);
        requests++;
        bool head = !strcmp(method, "HEAD");

        const char *name = strrchr(path, '/');
        name = name ? name + 1 : path;
        char file[4096], hdr_path[4200], extra[4096] = "";
        snprintf(file, sizeof file, "%s/%s", root, name);
        snprintf(hdr_path, sizeof hdr_path, "%s.hdr", file);
        FILE *hf = fopen(hdr_path, "r");
        if (hf) {
            size_t k = fread(extra, 1, sizeof extra - 1, hf);
            extra[k] = '\0';
            fclose(hf);
        }
        struct stat st;
        int fd = -1;
        int status;
        if (requests <= fail_first) {
            status = 500;
        } else if (!name[0] || strstr(name, "..") || (fd = open(file, O_RDONLY)) < 0 || fstat(fd, &st) != 0) {
            status = 404;
        } else if (range >= 0 && range >= (long long)st.st_size) {
            status = 416;
        } else {
            status = range >= 0 ? 206 : 200;
        }
        const char *auth = strcasestr(req, "\r\nAuthorization:") ? " auth" : "";
        if (range >= 0)
            fprintf(log, "%s %s bytes=%lld- %d%s\n", method, path, range, status, auth);
        else
            fprintf(log, "%s %s - %d%s\n", method, path, status, auth);
        bool cut = false;
        char head_buf[8192];
        int hl;
        if (status >= 400) {
            const char *body = status == 500 ? "injected failure\n" : status == 404 ? "not found\n" : "bad range\n";
            hl = snprintf(head_buf, sizeof head_buf,
                          "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                          status, status == 500 ? "Internal Server Error" : status == 404 ? "Not Found" : "Range Not Satisfiable",
                          strlen(body));
            send_all(c, head_buf, (size_t)hl);
            if (!head) send_all(c, body, strlen(body));
        } else {
            long long start = range >= 0 ? range : 0;
            long long len = (long long)st.st_size - start;
            if (status == 206)
                hl = snprintf(head_buf, sizeof head_buf,
                              "HTTP/1.1 206 Partial Content\r\nContent-Length: %lld\r\nContent-Range: bytes %lld-%lld/%lld\r\n"
                              "Accept-Ranges: bytes\r\n%sConnection: close\r\n\r\n",
                              len, start, (long long)st.st_size - 1, (long long)st.st_size, extra);
            else
                hl = snprintf(head_buf, sizeof head_buf,
                              "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\nAccept-Ranges: bytes\r\n%sConnection: close\r\n\r\n",
                              len, extra);
            send_all(c, head_buf, (size_t)hl);
            if (!head) {
                cut = cut_after >= 0 && cut_after < len;
                long long left = cut ? cut_after : len;
                if (lseek(fd, start, SEEK_SET) == start) {
                    char buf[65536];
                    while (left > 0) {
                        ssize_t r = read(fd, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
                        if (r <= 0 || send_all(c, buf, (size_t)r) != 0) break;
                        left -= r;
                        if (rate > 0) usleep((useconds_t)(r * 1000000LL / rate));
                    }
                }
            }
        }
        if (fd >= 0) close(fd);
        // A cut closes the connection before Content-Length bytes went out. A reset (SO_LINGER 0)
        // would be more like a dropped link, but it discards what the kernel still buffers, so the
        // client would get an unpredictable amount; a close makes the cut exact.
        (void)cut;
        shutdown(c, SHUT_WR);
        close(c);
    }
}
