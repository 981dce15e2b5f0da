/*
 * Fake virtio-vsock: VZVirtioSocketDevice, VZVirtioSocketListener and
 * VZVirtioSocketConnection.
 *
 * A connection is an AF_UNIX stream socketpair: the host end belongs to the
 * VZVirtioSocketConnection, which closes it on -close and on dealloc (so a client must
 * dup it inside the completion handler or delegate callback), and the guest end to the
 * fake guest. Connecting to a port nobody listens on in the guest completes with
 * NSPOSIXErrorDomain ECONNRESET, as VZ does.
 */
#include <Block.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sim_vz_runtime.h"

static uint32_t next_source_port = 49152;

@implementation VZVirtioSocketListener
@synthesize delegate = _delegate;
@end

@implementation VZVirtioSocketConnection
@synthesize destinationPort = _destinationPort;
@synthesize sourcePort = _sourcePort;
@synthesize fileDescriptor = _fileDescriptor;

- (instancetype)sim_initWithFileDescriptor:(int)fd source:(uint32_t)source destination:(uint32_t)dest
{
    if ((self = [super init]) == nil) return nil;
    _fileDescriptor = fd;
    _sourcePort = source;
    _destinationPort = dest;
    return self;
}

- (void)close
{
    if (_fileDescriptor >= 0) close(_fileDescriptor);
    _fileDescriptor = -1;
}

- (void)dealloc
{
    [self close];
    [super dealloc];
}
@end

@implementation VZSocketDevice
@end

struct connect_request {
    VZVirtioSocketDevice *device;
    uint32_t port;
    void (^handler)(VZVirtioSocketConnection *, NSError *);
};

@implementation VZVirtioSocketDevice

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _listeners = [[NSMutableDictionary alloc] init];
    return self;
}

- (void)dealloc
{
    [_listeners release];
    [super dealloc];
}

- (void)setSocketListener:(VZVirtioSocketListener *)listener forPort:(uint32_t)port
{
    [_machine sim_assertQueue:"-[VZVirtioSocketDevice setSocketListener:forPort:]"];
    if (listener == nil) SIM_RAISE(@"listener must not be nil; use removeSocketListenerForPort:");
    [_listeners setObject:listener forKey:[NSNumber numberWithUnsignedInt:port]];
}

- (void)removeSocketListenerForPort:(uint32_t)port
{
    [_machine sim_assertQueue:"-[VZVirtioSocketDevice removeSocketListenerForPort:]"];
    [_listeners removeObjectForKey:[NSNumber numberWithUnsignedInt:port]];
}

static void finish_connect(void *ctx)
{
    struct connect_request *r = ctx;
    VZVirtualMachine *vm = r->device->_machine;
    NSInteger state = [vm state];
    int pair[2];
    if ((state != VZVirtualMachineStateRunning && state != VZVirtualMachineStatePaused)
        || ![[vm sim_guest] listensOnPort:r->port]) {
        [vm sim_enterCallback];
        r->handler(nil, [NSError errorWithDomain:NSPOSIXErrorDomain code:ECONNRESET userInfo:nil]);
        [vm sim_exitCallback];
    } else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        r->handler(nil, [NSError errorWithDomain:NSPOSIXErrorDomain code:errno userInfo:nil]);
    } else {
        [[vm sim_guest] serveConnection:pair[1] port:r->port];
        uint32_t source = __atomic_fetch_add(&next_source_port, 1, __ATOMIC_SEQ_CST);
        VZVirtioSocketConnection *connection =
            [[VZVirtioSocketConnection alloc] sim_initWithFileDescriptor:pair[0]
                                                                  source:source
                                                             destination:r->port];
        [vm sim_enterCallback];
        r->handler(connection, nil);
        [vm sim_exitCallback];
        /* The handler had its chance to dup the descriptor; the connection (and its
         * fd) goes away with the last reference. */
        [connection release];
    }
    _Block_release(r->handler);
    [r->device release];
    [vm sim_unhold];
    free(r);
}

- (void)connectToPort:(uint32_t)port
    completionHandler:(void (^)(VZVirtioSocketConnection *, NSError *))completionHandler
{
    [_machine sim_assertQueue:"-[VZVirtioSocketDevice connectToPort:completionHandler:]"];
    struct connect_request *r = malloc(sizeof *r);
    if (r == NULL) sim_fatal("out of memory");
    r->device = [self retain];
    [_machine sim_hold];
    r->port = port;
    r->handler = _Block_copy(completionHandler);
    /* How much later the handler comes is Apple's to choose: the scheduler's. */
    sim_after_ms([_machine sim_queue], sim_choose(5), r, finish_connect);
}

- (int)sim_guestConnectToPort:(uint32_t)port
{
    [_machine sim_assertQueue:"-[VZVirtioSocketDevice sim_guestConnectToPort:]"];
    VZVirtioSocketListener *listener = [_listeners objectForKey:[NSNumber numberWithUnsignedInt:port]];
    id<VZVirtioSocketListenerDelegate> delegate = [listener delegate];
    SEL sel = @selector(listener:shouldAcceptNewConnection:fromSocketDevice:);
    if (listener == nil || ![delegate respondsToSelector:sel]) return -1;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return -1;
    uint32_t source = __atomic_fetch_add(&next_source_port, 1, __ATOMIC_SEQ_CST);
    VZVirtioSocketConnection *connection =
        [[VZVirtioSocketConnection alloc] sim_initWithFileDescriptor:pair[0]
                                                              source:source
                                                         destination:port];
    [_machine sim_enterCallback];
    BOOL accepted = [delegate listener:listener shouldAcceptNewConnection:connection fromSocketDevice:self];
    [_machine sim_exitCallback];
    [connection release];
    if (!accepted) {
        close(pair[1]);
        return -1;
    }
    return pair[1];
}

@end
