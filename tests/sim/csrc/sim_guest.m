/*
 * The fake guest behind a running fake VZVirtualMachine:
 * - at boot it prints a kernel banner on the first serial port's attachment;
 * - it serves a tiny shell on that console: it echoes what it reads, and `poweroff`
 *   shuts the guest down (guestDidStopVirtualMachine:);
 * - it runs an echo service on the vsock ports chosen by the test
 *   (sim_guest_set_echo_ports; by default port 1024, or $ARCBOX_VZ_SIM_ECHO_PORTS,
 *   a comma-separated list);
 * - $ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS=N (read at every boot): N ms after the boot the
 *   guest powers itself off exactly as if `poweroff` had been typed on its console
 *   (the same message, then guestDidStopVirtualMachine: through the same path). The
 *   timer belongs to that boot: a halt before it fires (a stop, a crash, a power-off,
 *   the VM released) disarms it, so it never touches a later boot or a freed VM.
 *   While the VM is paused, the guest's clock stands still: a timer due then fires
 *   once the VM runs again.
 * halt stops every guest thread and closes every guest-side descriptor, as a dying
 * guest would, so hosts see EOF.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sim_vz_runtime.h"

struct power_off_timer;

@interface SimGuest ()
- (void)sim_powerOff;
- (void)sim_powerOffTimerFired:(struct power_off_timer *)t;
@end

struct sim_connection {
    int fd;
    uint32_t port;
    SimGuest *guest;
    const char *greeting; /* written first, for connections the guest opened */
    struct sim_connection *next;
};

static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t echo_ports[64];
static size_t echo_port_count;
static int echo_ports_set;

void sim_guest_set_echo_ports(const uint32_t *ports, size_t n)
{
    if (n > sizeof echo_ports / sizeof echo_ports[0]) sim_fatal("too many echo ports");
    pthread_mutex_lock(&ports_lock);
    memcpy(echo_ports, ports, n * sizeof *ports);
    echo_port_count = n;
    echo_ports_set = 1;
    pthread_mutex_unlock(&ports_lock);
}

static void default_echo_ports(void)
{
    if (echo_ports_set) return;
    echo_ports_set = 1;
    const char *env = getenv("ARCBOX_VZ_SIM_ECHO_PORTS");
    if (env == NULL) {
        echo_ports[0] = 1024;
        echo_port_count = 1;
        return;
    }
    char *copy = strdup(env), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL && echo_port_count < 64;
         tok = strtok_r(NULL, ",", &save))
        echo_ports[echo_port_count++] = (uint32_t)strtoul(tok, NULL, 10);
    free(copy);
}

/* Guest output goes through the attachment, as the framework would write it. */
static void write_all(id console, const char *buf, size_t len)
{
    if (console == nil || len == 0) return;
    void *pool = objc_autoreleasePoolPush();
    [console sim_writeGuestOutput:[NSData dataWithBytes:buf length:len]];
    objc_autoreleasePoolPop(pool);
}

static void write_str(id console, const char *s) { write_all(console, s, strlen(s)); }

/* $ARCBOX_VZ_SIM_GUEST_CONNECT=PORT: after boot the guest connects to host vsock PORT
 * (retrying until a listener is there, for a few seconds), says hello and echoes. */
struct connect_attempt {
    VZVirtualMachine *vm;
    uint32_t port;
    int tries;
};

static void guest_connect_attempt(void *ctx)
{
    struct connect_attempt *a = ctx;
    NSArray *sockets = [a->vm state] == VZVirtualMachineStateRunning ? [a->vm socketDevices] : nil;
    if ([sockets count] > 0) {
        int fd = [[sockets objectAtIndex:0] sim_guestConnectToPort:a->port];
        if (fd >= 0) {
            [[a->vm sim_guest] sim_serveConnection:fd port:a->port greeting:"hello from the guest\n"];
        } else if (++a->tries < 250) {
            sim_after_ms([a->vm sim_queue], 20, a, guest_connect_attempt);
            return;
        }
    }
    [a->vm sim_unhold];
    free(a);
}

static void power_off_on_queue(void *ctx)
{
    VZVirtualMachine *vm = ctx;
    [vm sim_guestDidPowerOff];
    [vm sim_unhold];
}

/* $ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS: one per boot. The dispatch timer cannot be
 * cancelled, so it owns this record and frees it; halt only disarms it. Both run on
 * the VM queue, so `armed` needs no lock, and the VM is touched only while armed
 * (an armed timer means the guest has not halted, so the VM is alive). */
struct power_off_timer {
    SimGuest *guest; /* not retained; valid while armed */
    int armed;
};

/* How often a timer that came due while the VM was not running looks again. */
#define POWER_OFF_RECHECK_MS 10

static void power_off_timer_fired(void *ctx)
{
    struct power_off_timer *t = ctx;
    if (!t->armed) {
        free(t);
        return;
    }
    [t->guest sim_powerOffTimerFired:t];
}

@implementation SimGuest

- (instancetype)initWithMachine:(VZVirtualMachine *)machine
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _consoleIn = -1;
    _halted = 1;
    pthread_mutex_init(&_lock, NULL);
    pthread_cond_init(&_cond, NULL);
    return self;
}

- (void)dealloc
{
    [self halt];
    pthread_mutex_destroy(&_lock);
    pthread_cond_destroy(&_cond);
    [super dealloc];
}

static void *console_thread(void *arg)
{
    SimGuest *guest = arg;
    [guest sim_serveConsole];
    return NULL;
}

- (void)sim_serveConsole
{
    char line[256];
    size_t len = 0;
    while (!_halted) {
        struct pollfd p = { _consoleIn, POLLIN, 0 };
        int ready = poll(&p, 1, 20);
        if (ready <= 0 || _paused) continue;
        char buf[512];
        ssize_t n = read(_consoleIn, buf, sizeof buf);
        if (n == 0) return; /* the host closed the guest's input */
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c != '\r' && c != '\n') {
                write_all(_console, &c, 1);
                if (len < sizeof line - 1) line[len++] = c;
                continue;
            }
            write_str(_console, "\r\n");
            line[len] = '\0';
            if (strcmp(line, "poweroff") == 0) {
                [self sim_powerOff];
                return;
            }
            if (len > 0) {
                write_str(_console, "sh: ");
                write_all(_console, line, len);
                write_str(_console, ": not found\r\n");
            }
            write_str(_console, "# ");
            len = 0;
        }
    }
}

/* The guest shuts down: what `poweroff` on its console does (from the console thread,
 * or from the power-off timer on the VM queue). */
- (void)sim_powerOff
{
    write_str(_console, "[   42.000000] reboot: Power down\r\n");
    dispatch_async_f([_machine sim_queue], [_machine sim_hold], power_off_on_queue);
}

/* On the VM queue, with `t` armed (so this boot has not halted). */
- (void)sim_powerOffTimerFired:(struct power_off_timer *)t
{
    [_machine sim_assertQueue:"SimGuest power-off timer"];
    if (t != _powerOffTimer) sim_fatal("a power-off timer of another boot is armed");
    if ([_machine state] != VZVirtualMachineStateRunning || _paused) {
        /* Paused (or pausing, resuming): no guest time passes. Look again later. */
        sim_after_ms([_machine sim_queue], POWER_OFF_RECHECK_MS, t, power_off_timer_fired);
        return;
    }
    _powerOffTimer = NULL;
    free(t);
    [self sim_powerOff];
}

- (void)boot
{
    [_machine sim_assertQueue:"SimGuest boot"];
    _halted = 0;
    _paused = 0;
    NSArray *ports = [[_machine sim_configuration] serialPorts];
    id attachment = [ports count] ? (id)[(VZSerialPortConfiguration *)[ports objectAtIndex:0] attachment] : nil;
    _console = [attachment retain];
    if ([attachment isKindOfClass:NSClassFromString(@"VZFileHandleSerialPortAttachment")]) {
        NSFileHandle *in = [attachment fileHandleForReading];
        _consoleIn = in ? [in fileDescriptor] : -1;
    }
    id bootLoader = [[_machine sim_configuration] bootLoader];
    NSString *cmdline = [bootLoader respondsToSelector:@selector(commandLine)] ? [bootLoader commandLine] : @"";
    NSString *banner = [NSString stringWithFormat:
        @"[    0.000000] Booting Linux on physical CPU 0x0000000000\r\n"
         "[    0.000000] Linux version 6.6.0-arcbox-sim (fake guest of the arcbox-vz simulator)\r\n"
         "[    0.000000] Kernel command line: %@\r\n"
         "[    0.120000] printk: console [hvc0] enabled\r\n"
         "Welcome to the arcbox-vz simulator. Type 'poweroff' to shut down.\r\n# ",
        cmdline];
    write_str(_console, [banner UTF8String]);
    const char *connect_port = getenv("ARCBOX_VZ_SIM_GUEST_CONNECT");
    if (connect_port != NULL) {
        struct connect_attempt *a = calloc(1, sizeof *a);
        if (a == NULL) sim_fatal("out of memory");
        a->vm = [_machine sim_hold];
        a->port = (uint32_t)strtoul(connect_port, NULL, 10);
        sim_after_ms([_machine sim_queue], 20, a, guest_connect_attempt);
    }
    const char *power_off_ms = getenv("ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS");
    if (power_off_ms != NULL && *power_off_ms != '\0') {
        char *end = NULL;
        unsigned long ms = strtoul(power_off_ms, &end, 10);
        if (*end != '\0') sim_fatal("ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS=%s: not a number of ms", power_off_ms);
        if (_powerOffTimer != NULL) sim_fatal("a power-off timer is still armed at boot");
        struct power_off_timer *t = calloc(1, sizeof *t);
        if (t == NULL) sim_fatal("out of memory");
        t->guest = self;
        t->armed = 1;
        _powerOffTimer = t;
        sim_after_ms([_machine sim_queue], ms, t, power_off_timer_fired);
    }
    if (_consoleIn >= 0) {
        if (pthread_create(&_consoleThread, NULL, console_thread, self) != 0)
            sim_fatal("cannot start the guest console thread");
        _hasConsoleThread = YES;
    }
}

- (void)halt
{
    /* Disarm this boot's power-off timer (its record is freed when it fires). halt
     * runs on the VM queue, like the timer. */
    if (_powerOffTimer != NULL) {
        _powerOffTimer->armed = 0;
        _powerOffTimer = NULL;
    }
    pthread_mutex_lock(&_lock);
    _halted = 1;
    for (struct sim_connection *c = _connections; c != NULL; c = c->next)
        if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&_lock);
    if (_hasConsoleThread) {
        pthread_join(_consoleThread, NULL);
        _hasConsoleThread = NO;
    }
    pthread_mutex_lock(&_lock);
    while (_liveConnections > 0) pthread_cond_wait(&_cond, &_lock);
    pthread_mutex_unlock(&_lock);
    [_console release];
    _console = nil;
    _consoleIn = -1;
}

- (void)setPaused:(BOOL)paused { _paused = paused; }

- (BOOL)listensOnPort:(uint32_t)port
{
    pthread_mutex_lock(&ports_lock);
    default_echo_ports();
    BOOL found = NO;
    for (size_t i = 0; i < echo_port_count; i++) found |= echo_ports[i] == port;
    pthread_mutex_unlock(&ports_lock);
    return found && !_halted;
}

static void *echo_thread(void *arg)
{
    struct sim_connection *c = arg;
    SimGuest *guest = c->guest;
    char *buf = malloc(64 * 1024);
    if (c->greeting != NULL) send(c->fd, c->greeting, strlen(c->greeting), MSG_NOSIGNAL);
    for (;;) {
        ssize_t n = read(c->fd, buf, 64 * 1024);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = send(c->fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) goto done;
            off += w;
        }
    }
done:
    free(buf);
    [guest sim_connectionDone:c];
    return NULL;
}

- (void)sim_connectionDone:(struct sim_connection *)done
{
    pthread_mutex_lock(&_lock);
    for (struct sim_connection **p = &_connections; *p != NULL; p = &(*p)->next) {
        if (*p == done) {
            *p = done->next;
            break;
        }
    }
    close(done->fd);
    free(done);
    _liveConnections--;
    pthread_cond_broadcast(&_cond);
    pthread_mutex_unlock(&_lock);
}

- (void)serveConnection:(int)fd port:(uint32_t)port
{
    [self sim_serveConnection:fd port:port greeting:NULL];
}

- (void)sim_serveConnection:(int)fd port:(uint32_t)port greeting:(const char *)greeting
{
    struct sim_connection *c = calloc(1, sizeof *c);
    if (c == NULL) sim_fatal("out of memory");
    *c = (struct sim_connection){ fd, port, self, greeting, NULL };
    pthread_mutex_lock(&_lock);
    c->next = _connections;
    _connections = c;
    _liveConnections++;
    pthread_mutex_unlock(&_lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    if (pthread_create(&thread, &attr, echo_thread, c) != 0) sim_fatal("cannot start an echo thread");
    pthread_attr_destroy(&attr);
}

@end
