/* nfq_censor: the lab's packet-surgery censor (NFQUEUE, queue 0).
 *
 * Runs inside an operator namespace; nftables sends it the packets of
 * subscribers (iifname "down0").  Techniques, one per config line:
 *
 *   dns_inject host=H ip=A ttl=copy|N ipid=random|copy hold_ms=N
 *       On-path DNS injection: for an A query whose name is H or below H,
 *       forge an answer A (sent at once through a raw socket, so it reaches
 *       the client first), then let the genuine query continue after
 *       hold_ms: two responses reach the client, forged first.  ttl=copy
 *       copies the query's IP TTL into the forged packet (Iran, net4people#98);
 *       ipid=random|copy sets the forged IP-ID.
 *   http_blockpage host=H status=403|301
 *       In-path HTTP blockpage: a client segment whose Host is H is dropped
 *       and answered with a forged response (Iran's 403 + iframe to
 *       10.10.34.34, or 301 to http://10.10.34.34) carrying FIN.
 *   protocol_filter ports=53,80,443 seconds=60
 *       Iran's 2020 protocol filter (Bock et al.): on those TCP ports the first
 *       two data segments of a flow must look like DNS, HTTP or TLS, else the
 *       (client, server, port) triple is dropped for `seconds` (timer reset by
 *       every further packet).
 *
 * Usage: nfq_censor CONFIG   (logs to stdout; SIGTERM stops it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#define MAXR 32
enum kind { DNS_INJECT, HTTP_BLOCKPAGE, PROTOCOL_FILTER };
struct rule {
    enum kind kind;
    char host[256];
    struct in_addr ip;
    int ttl;        /* -1 = copy */
    int ipid_copy;  /* 0 = random */
    int hold_ms;
    int status;
    int ports[8], nports;
    int seconds;
};
static struct rule rules[MAXR];
static int nrules;
static int rawfd = -1;

/* protocol filter state */
#define MAXF 4096
struct flow { uint32_t s, d; uint16_t sp, dp; int data; };
struct pen { uint32_t s, d; uint16_t dp; double until; };
static struct flow flows[MAXF];
static int nflows;
static struct pen pens[MAXF];
static int npens;

static const char *BLOCKPAGE =
    "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1256\">"
    "<title>M1-6\n</title></head><body><iframe src=\"http://10.10.34.34?type=Invalid Site&policy=MainPolicy\" "
    "style=\"width: 100%; height: 100%\" scrolling=\"no\" marginwidth=\"0\" marginheight=\"0\" frameborder=\"0\" "
    "vspace=\"0\" hspace=\"0\"></iframe></body></html>\n";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *kv(const char *line, const char *key, char *out, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    size_t i = 0;
    while (*p && !isspace((unsigned char)*p) && i + 1 < n) out[i++] = *p++;
    out[i] = 0;
    return out;
}

static void load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(1); }
    char line[1024], v[256];
    while (fgets(line, sizeof line, f) && nrules < MAXR) {
        struct rule *r = &rules[nrules];
        memset(r, 0, sizeof *r);
        char l2[1100];
        snprintf(l2, sizeof l2, " %s", line);
        if (!strncmp(line, "dns_inject", 10)) r->kind = DNS_INJECT;
        else if (!strncmp(line, "http_blockpage", 14)) r->kind = HTTP_BLOCKPAGE;
        else if (!strncmp(line, "protocol_filter", 15)) r->kind = PROTOCOL_FILTER;
        else continue;
        if (kv(l2, "host", v, sizeof v)) snprintf(r->host, sizeof r->host, "%s", v);
        for (char *c = r->host; *c; c++) *c = tolower((unsigned char)*c);
        inet_aton(kv(l2, "ip", v, sizeof v) ? v : "10.10.34.34", &r->ip);
        r->ttl = (kv(l2, "ttl", v, sizeof v) && strcmp(v, "copy")) ? atoi(v) : -1;
        r->ipid_copy = kv(l2, "ipid", v, sizeof v) && !strcmp(v, "copy");
        r->hold_ms = kv(l2, "hold_ms", v, sizeof v) ? atoi(v) : 0;
        r->status = kv(l2, "status", v, sizeof v) ? atoi(v) : 403;
        r->seconds = kv(l2, "seconds", v, sizeof v) ? atoi(v) : 60;
        if (kv(l2, "ports", v, sizeof v)) {
            for (char *t = strtok(v, ","); t && r->nports < 8; t = strtok(NULL, ",")) r->ports[r->nports++] = atoi(t);
        }
        nrules++;
    }
    fclose(f);
    printf("nfq_censor: %d rules\n", nrules);
}

static uint16_t csum(const void *data, size_t len, uint32_t sum) {
    const uint8_t *p = data;
    while (len > 1) { sum += (p[0] << 8) | p[1]; p += 2; len -= 2; }
    if (len) sum += p[0] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons(~sum & 0xffff);
}

static uint32_t pseudo(const struct iphdr *ip, int proto, int len) {
    uint32_t s = 0, a = ntohl(ip->saddr), b = ntohl(ip->daddr);
    s += (a >> 16) + (a & 0xffff) + (b >> 16) + (b & 0xffff) + proto + len;
    return s;
}

static void send_ip(uint8_t *pkt, int len) {
    struct iphdr *ip = (struct iphdr *)pkt;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = ip->daddr};
    if (sendto(rawfd, pkt, len, 0, (struct sockaddr *)&to, sizeof to) < 0) perror("sendto");
}

static int name_matches(const char *name, const char *host) {
    size_t n = strlen(name), h = strlen(host);
    if (n == h) return !strcmp(name, host);
    return n > h && name[n - h - 1] == '.' && !strcmp(name + n - h, host);
}

/* returns verdict */
static int do_dns(struct rule *r, struct iphdr *ip, uint8_t *pl, int plen) {
    int ihl = ip->ihl * 4;
    struct udphdr *udp = (struct udphdr *)(pl + ihl);
    uint8_t *dns = pl + ihl + 8;
    int dlen = plen - ihl - 8;
    if (dlen < 17 || (dns[2] & 0x80)) return -1;
    char name[256];
    int i = 12, o = 0;
    while (i < dlen && dns[i]) {
        int l = dns[i];
        if (l > 63 || i + 1 + l >= dlen || o + l + 1 >= (int)sizeof name) return -1;
        if (o) name[o++] = '.';
        for (int k = 0; k < l; k++) name[o++] = tolower(dns[i + 1 + k]);
        i += 1 + l;
    }
    name[o] = 0;
    if (i + 5 > dlen) return -1;
    int qend = i + 5;
    uint16_t qtype = (dns[i + 1] << 8) | dns[i + 2];
    if (qtype != 1 || !name_matches(name, r->host)) return -1;
    uint8_t out[600];
    memset(out, 0, sizeof out);
    struct iphdr *oip = (struct iphdr *)out;
    struct udphdr *oudp = (struct udphdr *)(out + 20);
    uint8_t *od = out + 28;
    memcpy(od, dns, qend);
    od[2] = 0x81; od[3] = 0x80;            /* QR RD RA, NOERROR */
    od[4] = 0; od[5] = 1; od[6] = 0; od[7] = 1;
    od[8] = od[9] = od[10] = od[11] = 0;
    int n = qend;
    uint8_t ans[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4};
    memcpy(ans + 12, &r->ip, 4);
    memcpy(od + n, ans, 16);
    n += 16;
    int tot = 28 + n;
    oip->version = 4; oip->ihl = 5; oip->tot_len = htons(tot);
    oip->id = r->ipid_copy ? ip->id : htons(rand() & 0xffff);
    oip->ttl = r->ttl < 0 ? ip->ttl : r->ttl;
    oip->protocol = IPPROTO_UDP; oip->saddr = ip->daddr; oip->daddr = ip->saddr;
    oip->check = csum(oip, 20, 0);
    oudp->source = udp->dest; oudp->dest = udp->source; oudp->len = htons(8 + n);
    oudp->check = csum(oudp, 8 + n, pseudo(oip, IPPROTO_UDP, 8 + n));
    if (!oudp->check) oudp->check = 0xffff;
    send_ip(out, tot);
    printf("dns_inject: %s -> %s (ttl %d)\n", name, inet_ntoa(r->ip), oip->ttl);
    fflush(stdout);
    if (r->hold_ms > 0) usleep(r->hold_ms * 1000);
    return NF_ACCEPT;
}

static int do_http(struct rule *r, struct iphdr *ip, uint8_t *pl, int plen) {
    int ihl = ip->ihl * 4;
    struct tcphdr *tcp = (struct tcphdr *)(pl + ihl);
    int thl = tcp->doff * 4;
    uint8_t *data = pl + ihl + thl;
    int dlen = plen - ihl - thl;
    if (dlen <= 0) return -1;
    char buf[2048];
    int n = dlen < (int)sizeof buf - 1 ? dlen : (int)sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = 0;
    char *h = strcasestr(buf, "\r\nhost:");
    if (!h) return -1;
    h += 7;
    while (*h == ' ') h++;
    char host[256];
    int k = 0;
    while (*h && *h != '\r' && *h != ':' && k < 255) host[k++] = tolower((unsigned char)*h++);
    host[k] = 0;
    if (strcmp(host, r->host)) return -1;
    char resp[1400];
    int rl;
    if (r->status == 301)
        rl = snprintf(resp, sizeof resp, "HTTP/1.1 301 Moved Permanently\r\nLocation: http://10.10.34.34\r\n"
                                         "Content-Length: 0\r\nConnection: close\r\n\r\n");
    else
        rl = snprintf(resp, sizeof resp, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n"
                                         "Connection: close\r\n\r\n%s", strlen(BLOCKPAGE), BLOCKPAGE);
    uint8_t out[1500];
    memset(out, 0, 40);
    struct iphdr *oip = (struct iphdr *)out;
    struct tcphdr *ot = (struct tcphdr *)(out + 20);
    memcpy(out + 40, resp, rl);
    int tot = 40 + rl;
    oip->version = 4; oip->ihl = 5; oip->tot_len = htons(tot);
    oip->id = htons(rand() & 0xffff); oip->ttl = 64; oip->frag_off = htons(IP_DF);
    oip->protocol = IPPROTO_TCP; oip->saddr = ip->daddr; oip->daddr = ip->saddr;
    oip->check = csum(oip, 20, 0);
    ot->source = tcp->dest; ot->dest = tcp->source;
    ot->seq = tcp->ack_seq;
    ot->ack_seq = htonl(ntohl(tcp->seq) + dlen);
    ot->doff = 5; ot->psh = 1; ot->ack = 1; ot->fin = 1;
    ot->window = htons(65535);
    ot->check = csum(ot, 20 + rl, pseudo(oip, IPPROTO_TCP, 20 + rl));
    send_ip(out, tot);
    printf("http_blockpage: %s -> %d\n", host, r->status);
    fflush(stdout);
    return NF_DROP;
}

static int looks_ok(const uint8_t *d, int n) {
    static const char *m[] = {"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "PATCH ", "TRACE "};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (n >= (int)strlen(m[i]) && !memcmp(d, m[i], strlen(m[i]))) return 1;
    if (n >= 5 && d[0] >= 0x14 && d[0] <= 0x17 && d[1] == 3 && d[2] <= 4) return 1; /* TLS record */
    if (n >= 14 && ((d[0] << 8) | d[1]) == n - 2 && (d[4] & 0x80) == 0) return 1; /* DNS over TCP query */
    return 0;
}

static int do_proto(struct rule *r, struct iphdr *ip, uint8_t *pl, int plen) {
    int ihl = ip->ihl * 4;
    struct tcphdr *tcp = (struct tcphdr *)(pl + ihl);
    int dport = ntohs(tcp->dest), hit = 0;
    for (int i = 0; i < r->nports; i++) hit |= r->ports[i] == dport;
    if (!hit) return -1;
    double t = now();
    for (int i = 0; i < npens; i++) {
        struct pen *p = &pens[i];
        if (p->s == ip->saddr && p->d == ip->daddr && p->dp == tcp->dest && p->until > t) {
            p->until = t + r->seconds;
            return NF_DROP;
        }
    }
    int dlen = plen - ihl - tcp->doff * 4;
    if (dlen <= 0) return -1;
    struct flow *f = NULL;
    for (int i = 0; i < nflows; i++)
        if (flows[i].s == ip->saddr && flows[i].d == ip->daddr && flows[i].sp == tcp->source && flows[i].dp == tcp->dest)
            f = &flows[i];
    if (!f) {
        f = &flows[nflows < MAXF ? nflows++ : rand() % MAXF];
        *f = (struct flow){ip->saddr, ip->daddr, tcp->source, tcp->dest, 0};
    }
    if (++f->data > 2) return -1;
    if (looks_ok(pl + ihl + tcp->doff * 4, dlen)) {
        f->data = 3; /* classified: the rest of the flow passes */
        return -1;
    }
    struct pen *p = NULL;
    for (int i = 0; i < npens; i++) if (pens[i].until <= t) p = &pens[i];
    if (!p) p = &pens[npens < MAXF ? npens++ : 0];
    *p = (struct pen){ip->saddr, ip->daddr, tcp->dest, t + r->seconds};
    printf("protocol_filter: unknown protocol to port %d, triple blocked for %d s\n", dport, r->seconds);
    fflush(stdout);
    return NF_DROP;
}

static int cb(struct nfq_q_handle *qh, struct nfgenmsg *m, struct nfq_data *nfa, void *data) {
    (void)m; (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    uint32_t id = ph ? ntohl(ph->packet_id) : 0;
    unsigned char *pl;
    int plen = nfq_get_payload(nfa, &pl);
    int verdict = NF_ACCEPT;
    if (plen >= 20) {
        struct iphdr *ip = (struct iphdr *)pl;
        int ihl = ip->ihl * 4;
        for (int i = 0; i < nrules; i++) {
            int v = -1;
            if (rules[i].kind == DNS_INJECT && ip->protocol == IPPROTO_UDP && plen >= ihl + 8 &&
                ntohs(((struct udphdr *)(pl + ihl))->dest) == 53)
                v = do_dns(&rules[i], ip, pl, plen);
            else if (ip->protocol == IPPROTO_TCP && plen >= ihl + 20) {
                if (rules[i].kind == HTTP_BLOCKPAGE) v = do_http(&rules[i], ip, pl, plen);
                else if (rules[i].kind == PROTOCOL_FILTER) v = do_proto(&rules[i], ip, pl, plen);
            }
            if (v >= 0) { verdict = v; break; }
        }
    }
    return nfq_set_verdict(qh, id, verdict, 0, NULL);
}

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s CONFIG\n", argv[0]); return 2; }
    srand(time(NULL) ^ getpid());
    load(argv[1]);
    rawfd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (rawfd < 0) { perror("raw socket"); return 1; }
    struct nfq_handle *h = nfq_open();
    if (!h) { perror("nfq_open"); return 1; }
    nfq_unbind_pf(h, AF_INET);
    if (nfq_bind_pf(h, AF_INET) < 0) { perror("nfq_bind_pf"); return 1; }
    struct nfq_q_handle *qh = nfq_create_queue(h, 0, &cb, NULL);
    if (!qh) { perror("nfq_create_queue"); return 1; }
    if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff) < 0) { perror("nfq_set_mode"); return 1; }
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int fd = nfq_fd(h);
    char buf[0x10000] __attribute__((aligned));
    printf("nfq_censor ready\n");
    fflush(stdout);
    while (!stop) {
        int rv = recv(fd, buf, sizeof buf, 0);
        if (rv < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) continue;
            perror("recv");
            break;
        }
        nfq_handle_packet(h, buf, rv);
    }
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
