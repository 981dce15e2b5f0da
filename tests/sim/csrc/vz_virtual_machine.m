/*
 * Fake VZVirtualMachine: Apple's documented state machine, completion handlers that
 * run later on the VM queue, delegate callbacks on the queue, KVO on `state`, and a
 * queue assertion in every VM-bound member (VZ traps with dispatch_assert_queue).
 *
 * Transitions (VZVirtualMachine.h):
 *   start   Stopped|Error -> Starting -> Running
 *   pause   Running -> Pausing -> Paused
 *   resume  Paused -> Resuming -> Running
 *   stop    Running|Paused -> Stopping -> Stopped          (macOS 12, no delegate call)
 *   requestStop (Running): the guest powers off later -> Stopped, guestDidStopVirtualMachine:
 *   a guest failure -> Error, virtualMachine:didStopWithError:
 * An illegal transition completes with VZErrorInvalidVirtualMachineStateTransition.
 */
#include <Block.h>
#include <pthread.h>
#include <stdlib.h>
#include "sim_vz_runtime.h"

void objc_release(id object);

/* ---- control-hook state ---- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static VZVirtualMachine *running[256];
static size_t running_len;
static long fail_next_start;
static unsigned shutdown_delay_ms = 20;
static long released_while_running;
/* Apple does not order a state change against the completion handler or delegate
 * call that goes with it, nor say on which thread KVO notifications arrive. */
static unsigned callback_delay_ms;   /* the callback is a later work item, after this */
static int delegate_first;           /* the delegate call comes before the state change */
static int kvo_off_queue;            /* `state` notifications arrive on another thread */

void sim_register_running(VZVirtualMachine *vm)
{
    pthread_mutex_lock(&registry_lock);
    if (running_len == sizeof running / sizeof running[0]) sim_fatal("too many running VMs");
    running[running_len++] = vm;
    pthread_mutex_unlock(&registry_lock);
}

void sim_unregister_running(VZVirtualMachine *vm)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < running_len; i++) {
        if (running[i] == vm) {
            memmove(&running[i], &running[i + 1], (running_len - i - 1) * sizeof running[0]);
            running_len--;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

/* The most recently started VM that is still running, retained; nil if none. */
static VZVirtualMachine *last_running(void)
{
    pthread_mutex_lock(&registry_lock);
    VZVirtualMachine *vm = running_len ? [running[running_len - 1] sim_hold] : nil;
    pthread_mutex_unlock(&registry_lock);
    return vm;
}

/* ---- deferred steps on the VM queue ---- */

typedef void (*vm_step_t)(VZVirtualMachine *vm, void (^handler)(NSError *));

struct pending {
    VZVirtualMachine *vm;
    void (^handler)(NSError *);
    vm_step_t step;
};

static void pending_run(void *ctx)
{
    struct pending *p = ctx;
    [p->vm sim_enterCallback];
    p->step(p->vm, p->handler);
    [p->vm sim_exitCallback];
    if (p->handler != NULL) _Block_release(p->handler);
    [p->vm sim_unhold];
    free(p);
}

/* Runs step(vm, handler) on the VM queue after `ms`, keeping both alive until then. */
static void later(VZVirtualMachine *vm, uint64_t ms, void (^handler)(NSError *), vm_step_t step)
{
    struct pending *p = malloc(sizeof *p);
    if (p == NULL) sim_fatal("out of memory");
    p->vm = [vm sim_hold];
    p->handler = handler != NULL ? _Block_copy(handler) : NULL;
    p->step = step;
    sim_after_ms([vm sim_queue], ms, p, pending_run);
}

static NSError *transition_error(NSString *what)
{
    return [NSError errorWithDomain:VZErrorDomain
                               code:VZErrorInvalidVirtualMachineStateTransition
                           userInfo:@{ NSLocalizedDescriptionKey : [NSString stringWithFormat:
                                           @"Invalid virtual machine state transition (%@).", what] }];
}

static void complete_with_error(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    handler(transition_error(@"the virtual machine cannot do this in its current state"));
}

static void complete_ok(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    (void)vm;
    handler(nil);
}

/* Runs `block` on the VM queue as a later work item (after callback_delay_ms). */
static void block_step(VZVirtualMachine *vm, void (^block)(NSError *))
{
    (void)vm;
    block(nil);
}

static void then_later(VZVirtualMachine *vm, void (^block)(NSError *))
{
    later(vm, callback_delay_ms, block, block_step);
}

struct kvo_change {
    VZVirtualMachine *vm;
    NSInteger state;
};

static void *kvo_thread(void *ctx)
{
    struct kvo_change *c = ctx;
    void *pool = objc_autoreleasePoolPush();
    [c->vm sim_applyState:c->state];
    objc_autoreleasePoolPop(pool);
    return NULL;
}

@implementation VZStorageDevice
@end

@implementation VZVirtualMachineStartOptions
@end

@implementation VZVirtualMachine

@synthesize delegate = _delegate;

+ (BOOL)isSupported { return YES; }

+ (BOOL)automaticallyNotifiesObserversForKey:(NSString *)key
{
    return [key isEqualToString:@"state"] ? NO : [super automaticallyNotifiesObserversForKey:key];
}

static NSArray *make_devices(VZVirtualMachine *vm, NSArray *configs, id (^make)(id config))
{
    NSMutableArray *devices = [NSMutableArray array];
    for (id config in configs) {
        id device = make(config);
        [devices addObject:device];
        [device release];
    }
    return [devices copy];
}

- (instancetype)initWithConfiguration:(VZVirtualMachineConfiguration *)configuration queue:(id)queue
{
    /* "The configuration must be valid." */
    NSError *error = nil;
    if (![configuration validateWithError:&error])
        SIM_RAISE(@"Invalid virtual machine configuration: %@", [error localizedDescription]);
    if (queue == nil) SIM_RAISE(@"The queue must not be nil.");
    if ((self = [super init]) == nil) return nil;
    _configuration = [configuration copy];
    _queue = (dispatch_queue_t)queue;
    dispatch_retain(_queue);
    _state = VZVirtualMachineStateStopped;

    Class socketClass = NSClassFromString(@"VZVirtioSocketDevice");
    Class balloonClass = NSClassFromString(@"VZVirtioTraditionalMemoryBalloonDevice");
    Class fsClass = NSClassFromString(@"VZVirtioFileSystemDevice");
    Class networkClass = NSClassFromString(@"VZNetworkDevice");
    Class consoleClass = NSClassFromString(@"VZVirtioConsoleDevice");
    Class usbClass = NSClassFromString(@"VZXHCIController");
    _socketDevices = make_devices(self, [_configuration socketDevices], ^id(id c) {
        (void)c;
        return [[socketClass alloc] sim_initWithMachine:self];
    });
    _memoryBalloonDevices = make_devices(self, [_configuration memoryBalloonDevices], ^id(id c) {
        (void)c;
        return [[balloonClass alloc] sim_initWithMachine:self];
    });
    _directorySharingDevices = make_devices(self, [_configuration directorySharingDevices], ^id(id c) {
        return [[fsClass alloc] sim_initWithMachine:self configuration:c];
    });
    _networkDevices = make_devices(self, [_configuration networkDevices], ^id(id c) {
        return [[networkClass alloc] sim_initWithMachine:self attachment:[(VZNetworkDeviceConfiguration *)c attachment]];
    });
    _consoleDevices = make_devices(self, [_configuration consoleDevices], ^id(id c) {
        return [[consoleClass alloc] sim_initWithMachine:self configuration:c];
    });
    _usbControllers = make_devices(self, [_configuration usbControllers], ^id(id c) {
        (void)c;
        return [[usbClass alloc] sim_initWithMachine:self];
    });
    _guest = [[SimGuest alloc] initWithMachine:self];
    return self;
}

- (void)dealloc
{
    [self sim_assertQueue:"-[VZVirtualMachine dealloc]"];
    if (_state != VZVirtualMachineStateStopped && _state != VZVirtualMachineStateError) {
        __atomic_fetch_add(&released_while_running, 1, __ATOMIC_SEQ_CST);
        [_guest halt];
        sim_unregister_running(self);
    }
    [_guest release];
    [_socketDevices release];
    [_memoryBalloonDevices release];
    [_directorySharingDevices release];
    [_networkDevices release];
    [_consoleDevices release];
    [_usbControllers release];
    [_configuration release];
    dispatch_release(_queue);
    [super dealloc];
}

- (dispatch_queue_t)sim_queue { return _queue; }
- (VZVirtualMachineConfiguration *)sim_configuration { return _configuration; }
- (SimGuest *)sim_guest { return _guest; }

- (void)sim_assertQueue:(const char *)what { sim_assert_queue(_queue, what); }

- (id)sim_hold
{
    __atomic_fetch_add(&_internalRefs, 1, __ATOMIC_SEQ_CST);
    return [self retain];
}

- (void)sim_unhold
{
    __atomic_fetch_sub(&_internalRefs, 1, __ATOMIC_SEQ_CST);
    [self release];
}

- (void)sim_enterCallback { _callbackDepth++; }
- (void)sim_exitCallback { _callbackDepth--; }

/*
 * A client that releases its last reference to the virtual machine from inside one of
 * the framework's own callbacks makes the framework free the machine under its own
 * feet: Apple promises nothing there. The fake keeps itself alive (so nothing crashes
 * by luck) and fails loudly instead.
 */
- (oneway void)release
{
    if (sim_on_queue(_queue) && _callbackDepth > 0
        && (long)[self retainCount] - __atomic_load_n(&_internalRefs, __ATOMIC_SEQ_CST) == 1)
        sim_fatal("VZVirtualMachine %p: the client released its last reference inside a "
                  "completion handler, delegate method or notification of the framework "
                  "(release it in a work item of its own)", (void *)self);
    [super release];
}

- (void)sim_applyState:(NSInteger)state
{
    [self willChangeValueForKey:@"state"];
    _state = state;
    [self didChangeValueForKey:@"state"];
}

- (void)sim_setState:(NSInteger)state
{
    if (state == _state) return;
    [self sim_enterCallback];
    if (kvo_off_queue) {
        /* The VM queue waits while another thread changes the state and notifies. */
        struct kvo_change change = { self, state };
        pthread_t thread;
        if (pthread_create(&thread, NULL, kvo_thread, &change) != 0) sim_fatal("pthread_create");
        pthread_join(thread, NULL);
    } else {
        [self sim_applyState:state];
    }
    [self sim_exitCallback];
}

/* Key-value coding of `state`, which KVO uses to fill the change dictionary: the
 * framework reads its own ivar, wherever it posts the notification. The `state`
 * getter itself traps off the queue. */
- (id)valueForKey:(NSString *)key
{
    if ([key isEqualToString:@"state"]) return [NSNumber numberWithInteger:_state];
    return [super valueForKey:key];
}

- (NSInteger)state
{
    [self sim_assertQueue:"-[VZVirtualMachine state]"];
    return _state;
}

- (id<VZVirtualMachineDelegate>)delegate
{
    [self sim_assertQueue:"-[VZVirtualMachine delegate]"];
    return _delegate;
}

- (void)setDelegate:(id<VZVirtualMachineDelegate>)delegate
{
    [self sim_assertQueue:"-[VZVirtualMachine setDelegate:]"];
    _delegate = delegate;
}

- (BOOL)canStart
{
    [self sim_assertQueue:"-[VZVirtualMachine canStart]"];
    return _state == VZVirtualMachineStateStopped || _state == VZVirtualMachineStateError;
}

- (BOOL)canStop
{
    [self sim_assertQueue:"-[VZVirtualMachine canStop]"];
    return _state == VZVirtualMachineStateRunning || _state == VZVirtualMachineStatePaused;
}

- (BOOL)canPause
{
    [self sim_assertQueue:"-[VZVirtualMachine canPause]"];
    return _state == VZVirtualMachineStateRunning;
}

- (BOOL)canResume
{
    [self sim_assertQueue:"-[VZVirtualMachine canResume]"];
    return _state == VZVirtualMachineStatePaused;
}

- (BOOL)canRequestStop
{
    [self sim_assertQueue:"-[VZVirtualMachine canRequestStop]"];
    return _state == VZVirtualMachineStateRunning;
}

#define DEVICE_GETTER(name)                                                   \
    - (NSArray *)name                                                         \
    {                                                                         \
        [self sim_assertQueue:"-[VZVirtualMachine " #name "]"];               \
        return _##name;                                                       \
    }
DEVICE_GETTER(socketDevices)
DEVICE_GETTER(memoryBalloonDevices)
DEVICE_GETTER(directorySharingDevices)
DEVICE_GETTER(networkDevices)
DEVICE_GETTER(consoleDevices)
DEVICE_GETTER(usbControllers)

/* ---- start ---- */

static void start_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    [vm sim_finishStart:handler];
}

- (void)sim_finishStart:(void (^)(NSError *))handler
{
    long code = __atomic_exchange_n(&fail_next_start, 0, __ATOMIC_SEQ_CST);
    if (code != 0) {
        [self sim_setState:VZVirtualMachineStateStopped];
        NSError *error = [NSError errorWithDomain:VZErrorDomain code:code userInfo:@{
            NSLocalizedDescriptionKey : @"The virtual machine failed to start.",
            NSLocalizedFailureReasonErrorKey : @"Internal Virtualization error.",
        }];
        [error retain];
        then_later(self, ^(NSError *unused) {
            (void)unused;
            handler(error);
            [error release];
        });
        return;
    }
    id bootLoader = [_configuration bootLoader];
    if ([bootLoader isKindOfClass:NSClassFromString(@"VZEFIBootLoader")]
        && ![[bootLoader variableStore] sim_isUsable])
        /* Code-Hex/vz#127: an empty or garbage NVRAM file is an uncaught C++ exception. */
        sim_fatal("libc++abi: terminating due to uncaught exception of type "
                  "Base::bad_expected_access (EFI variable store is empty or garbage)");
    [self sim_setState:VZVirtualMachineStateRunning];
    sim_register_running(self);
    [_guest boot];
    later(self, callback_delay_ms, handler, complete_ok);
}

- (void)startWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine startWithCompletionHandler:]"];
    if (![self canStart]) {
        later(self, 1, completionHandler, complete_with_error);
        return;
    }
    _stopRequested = NO;
    [self sim_setState:VZVirtualMachineStateStarting];
    later(self, 5, completionHandler, start_step);
}

- (void)startWithOptions:(VZVirtualMachineStartOptions *)options
       completionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine startWithOptions:completionHandler:]"];
    if (options == nil) SIM_RAISE(@"options must not be nil");
    [self startWithCompletionHandler:completionHandler];
}

/* ---- pause / resume ---- */

static void pause_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    [vm sim_setState:VZVirtualMachineStatePaused];
    [[vm sim_guest] setPaused:YES];
    later(vm, callback_delay_ms, handler, complete_ok);
}

static void resume_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    [[vm sim_guest] setPaused:NO];
    [vm sim_setState:VZVirtualMachineStateRunning];
    later(vm, callback_delay_ms, handler, complete_ok);
}

- (void)pauseWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine pauseWithCompletionHandler:]"];
    if (![self canPause]) {
        later(self, 1, completionHandler, complete_with_error);
        return;
    }
    [self sim_setState:VZVirtualMachineStatePausing];
    later(self, 2, completionHandler, pause_step);
}

- (void)resumeWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine resumeWithCompletionHandler:]"];
    if (![self canResume]) {
        later(self, 1, completionHandler, complete_with_error);
        return;
    }
    [self sim_setState:VZVirtualMachineStateResuming];
    later(self, 2, completionHandler, resume_step);
}

/* ---- stop (force) ---- */

- (void)sim_halt
{
    [_guest halt];
    sim_unregister_running(self);
}

static void stop_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    [vm sim_halt];
    [vm sim_setState:VZVirtualMachineStateStopped];
    later(vm, callback_delay_ms, handler, complete_ok);
}

- (void)stopWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine stopWithCompletionHandler:]"];
    if (![self canStop]) {
        later(self, 1, completionHandler, complete_with_error);
        return;
    }
    [self sim_setState:VZVirtualMachineStateStopping];
    later(self, 2, completionHandler, stop_step);
}

/* ---- the guest stops by itself ---- */

- (void)sim_guestDidPowerOff
{
    [self sim_assertQueue:"-[VZVirtualMachine sim_guestDidPowerOff]"];
    if (_state != VZVirtualMachineStateRunning) return;
    [self sim_halt];
    void (^tell)(NSError *) = ^(NSError *unused) {
        (void)unused;
        [self sim_enterCallback];
        if ([_delegate respondsToSelector:@selector(guestDidStopVirtualMachine:)])
            [_delegate guestDidStopVirtualMachine:self];
        [self sim_exitCallback];
    };
    [self sim_stopInState:VZVirtualMachineStateStopped telling:tell];
}

static void power_off_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    (void)handler;
    [vm sim_guestDidPowerOff];
}

- (BOOL)requestStopWithError:(NSError **)error
{
    [self sim_assertQueue:"-[VZVirtualMachine requestStopWithError:]"];
    if (![self canRequestStop]) {
        if (error != NULL) *error = transition_error(@"requestStop needs a running virtual machine");
        return NO;
    }
    if (!_stopRequested) {
        /* The guest sees the power button and shuts down a moment later. */
        _stopRequested = YES;
        later(self, shutdown_delay_ms, NULL, power_off_step);
    }
    return YES;
}

/* The state change and the delegate call of a stop, in the order chosen for this run
 * (Apple does not order them), the second one a later work item. */
- (void)sim_stopInState:(NSInteger)state telling:(void (^)(NSError *))tell
{
    void (^change)(NSError *) = ^(NSError *unused) {
        (void)unused;
        [self sim_setState:state];
    };
    if (delegate_first) {
        tell(nil);
        then_later(self, change);
    } else {
        change(nil);
        then_later(self, tell);
    }
}

- (void)sim_crashWithCode:(NSInteger)code reason:(NSString *)reason
{
    [self sim_assertQueue:"-[VZVirtualMachine sim_crashWithCode:]"];
    if (_state != VZVirtualMachineStateRunning && _state != VZVirtualMachineStatePaused) return;
    [self sim_halt];
    NSError *error = [[NSError errorWithDomain:VZErrorDomain code:code userInfo:@{
        NSLocalizedDescriptionKey : @"The virtual machine stopped unexpectedly.",
        NSLocalizedFailureReasonErrorKey : reason,
    }] retain];
    void (^tell)(NSError *) = ^(NSError *unused) {
        (void)unused;
        [self sim_enterCallback];
        if ([_delegate respondsToSelector:@selector(virtualMachine:didStopWithError:)])
            [_delegate virtualMachine:self didStopWithError:error];
        [self sim_exitCallback];
        [error release];
    };
    [self sim_stopInState:VZVirtualMachineStateError telling:tell];
}

- (void)sim_disconnectNetworkDevice:(NSUInteger)index
{
    [self sim_assertQueue:"-[VZVirtualMachine sim_disconnectNetworkDevice:]"];
    if (index >= [_networkDevices count]) return;
    VZNetworkDevice *device = [_networkDevices objectAtIndex:index];
    [device setAttachment:nil];
    NSError *error = [NSError errorWithDomain:VZErrorDomain code:VZErrorNetworkError userInfo:@{
        NSLocalizedDescriptionKey : @"The network attachment was disconnected.",
    }];
    SEL sel = @selector(virtualMachine:networkDevice:attachmentWasDisconnectedWithError:);
    [self sim_enterCallback];
    if ([_delegate respondsToSelector:sel])
        [_delegate virtualMachine:self networkDevice:device attachmentWasDisconnectedWithError:error];
    [self sim_exitCallback];
}

@end

/* ---- control hooks (called by tests through arcbox_vz_sim) ---- */

void sim_guest_fail_next_start(long code) { __atomic_store_n(&fail_next_start, code, __ATOMIC_SEQ_CST); }
void sim_guest_set_shutdown_delay_ms(unsigned ms) { shutdown_delay_ms = ms; }
void sim_set_callback_order(unsigned delay_ms, int delegate_before_state, int kvo_on_other_thread)
{
    callback_delay_ms = delay_ms;
    delegate_first = delegate_before_state;
    kvo_off_queue = kvo_on_other_thread;
}
long sim_vms_released_while_running(void) { return __atomic_load_n(&released_while_running, __ATOMIC_SEQ_CST); }

long sim_running_vms(void)
{
    pthread_mutex_lock(&registry_lock);
    long n = (long)running_len;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

struct hook_call {
    VZVirtualMachine *vm;
    long arg;
    long result;
    dispatch_function_t fn;
};

/* dispatch_sync work items get no autorelease pool (as in libdispatch): add one. */
static void hook_in_pool(void *ctx)
{
    struct hook_call *c = ctx;
    void *pool = objc_autoreleasePoolPush();
    [c->vm sim_enterCallback];
    c->fn(c);
    [c->vm sim_exitCallback];
    objc_autoreleasePoolPop(pool);
}

static void unhold(void *ctx) { [(VZVirtualMachine *)ctx sim_unhold]; }

static void crash_on_queue(void *ctx)
{
    struct hook_call *c = ctx;
    [c->vm sim_crashWithCode:c->arg reason:@"The guest failed (injected by the simulator)."];
}

static void connect_on_queue(void *ctx)
{
    struct hook_call *c = ctx;
    NSArray *sockets = [c->vm socketDevices];
    c->result = [sockets count] ? [[sockets objectAtIndex:0] sim_guestConnectToPort:(uint32_t)c->arg] : -1;
}

static void disconnect_on_queue(void *ctx)
{
    struct hook_call *c = ctx;
    [c->vm sim_disconnectNetworkDevice:(NSUInteger)c->arg];
}

static void power_off_on_queue(void *ctx)
{
    struct hook_call *c = ctx;
    [c->vm sim_guestDidPowerOff];
}

/* Runs fn on the last running VM's queue and waits; returns -1 when none runs. */
static long on_last_running(dispatch_function_t fn, long arg)
{
    VZVirtualMachine *vm = last_running();
    if (vm == nil) return -1;
    struct hook_call call = { vm, arg, 0, fn };
    dispatch_sync_f([vm sim_queue], &call, hook_in_pool);
    /* The VM may be released here for the last time: do that on its queue too. */
    dispatch_async_f([vm sim_queue], vm, unhold);
    return call.result;
}

/* Makes the guest of the last started running VM fail with VZErrorDomain `code`. */
long sim_guest_crash(long code) { return on_last_running(crash_on_queue, code); }

/* The guest connects to host vsock `port`; returns the guest's end, or -1. */
int sim_guest_connect(uint32_t port) { return (int)on_last_running(connect_on_queue, port); }

/* The network attachment of device `index` goes away. */
long sim_network_disconnect(unsigned index) { return on_last_running(disconnect_on_queue, index); }

/* The guest powers itself off (like `poweroff` in the guest). */
long sim_guest_power_off(void) { return on_last_running(power_off_on_queue, 0); }
