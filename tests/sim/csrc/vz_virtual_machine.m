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
/* What Apple leaves open is drawn from the seeded scheduler (sim_schedule.c) unless a
 * test pins it (sim_set_callback_order). */
static int pinned;
static unsigned pinned_delay_ms;
static int pinned_delegate_first;
static int pinned_kvo_off_queue;

/* A callback that waits for the client's next call comes at the latest this late. */
#define NEXT_CALL_FALLBACK_MS 30

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

/* ---- deferred steps on the VM queue ----
 *
 * `later` runs a step of the framework's own work after a fixed time. `callback` runs
 * a step that calls the client (a completion handler, a delegate method, the state
 * change and its notification) as a work item of its own, when the scheduler says:
 * at once, a few milliseconds later, or after the client's next call into the
 * virtual machine (NEXT_CALL_FALLBACK_MS at the latest). The framework keeps the
 * machine alive until a callback; whether it also keeps it alive across the callback
 * is Apple's to choose, so the scheduler chooses. When it does not, a client that
 * releases its last reference inside the callback frees the machine there, and the
 * framework's next touch of it aborts (a zombie: sim_zombie.m).
 */

typedef void (*vm_step_t)(VZVirtualMachine *vm, void (^handler)(NSError *));

enum pending_place { PENDING_TIMED, PENDING_LISTED, PENDING_FLUSHED, PENDING_DONE };

struct pending {
    VZVirtualMachine *vm;
    void (^handler)(NSError *);
    vm_step_t step;
    int callback;              /* calls the client */
    enum pending_place place;  /* VM queue only */
    int timer_fired;           /* VM queue only */
    struct pending *next;      /* in the VM's list of steps waiting for a client call */
};

static struct pending *make_pending(VZVirtualMachine *vm, void (^handler)(NSError *), vm_step_t step,
                                    int is_callback)
{
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL) sim_fatal("out of memory");
    p->vm = [vm sim_hold];
    p->handler = handler != NULL ? _Block_copy(handler) : NULL;
    p->step = step;
    p->callback = is_callback;
    return p;
}

static void pending_execute(struct pending *p)
{
    VZVirtualMachine *vm = p->vm;
    BOOL early = p->callback && sim_choose(2) == 0 && [vm sim_clientReferences] > 0;
    [vm sim_enterCallback];
    if (early) [vm sim_unhold];
    p->step(vm, p->handler);
    /* Touches the machine after the callback, as the framework would: a zombie aborts. */
    [vm sim_exitCallback];
    if (!early) [vm sim_unhold];
    if (p->handler != NULL) _Block_release(p->handler);
    p->handler = NULL;
}

/* The timer of a step (every step has one). */
static void pending_timer(void *ctx)
{
    struct pending *p = ctx;
    switch (p->place) {
    case PENDING_LISTED:
        [p->vm sim_undefer:p];
        /* fall through */
    case PENDING_TIMED:
        pending_execute(p);
        free(p);
        break;
    case PENDING_FLUSHED:
        p->timer_fired = 1; /* the flushed run frees it */
        break;
    case PENDING_DONE:
        free(p);
        break;
    }
}

/* A listed step that a client call released. */
static void pending_flushed(void *ctx)
{
    struct pending *p = ctx;
    pending_execute(p);
    if (p->timer_fired) free(p);
    else p->place = PENDING_DONE;
}

static void later(VZVirtualMachine *vm, uint64_t ms, void (^handler)(NSError *), vm_step_t step)
{
    sim_after_ms([vm sim_queue], ms, make_pending(vm, handler, step, 0), pending_timer);
}

static void callback(VZVirtualMachine *vm, void (^handler)(NSError *), vm_step_t step)
{
    struct pending *p = make_pending(vm, handler, step, 1);
    uint64_t ms;
    if (pinned) {
        ms = pinned_delay_ms;
    } else {
        switch (sim_choose(3)) {
        case 0: ms = 0; break;
        case 1: ms = 1 + sim_choose(4); break;
        default:
            ms = NEXT_CALL_FALLBACK_MS;
            p->place = PENDING_LISTED;
            [vm sim_defer:p];
            break;
        }
    }
    sim_after_ms([vm sim_queue], ms, p, pending_timer);
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

/* Runs `block` on the VM queue as a callback work item of its own. */
static void block_step(VZVirtualMachine *vm, void (^block)(NSError *))
{
    (void)vm;
    block(nil);
}

static void then_later(VZVirtualMachine *vm, void (^block)(NSError *))
{
    callback(vm, block, block_step);
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
    _graphicsDevices = sim_graphics_devices(self, [_configuration graphicsDevices]);
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
    [_graphicsDevices release];
    [_configuration release];
    dispatch_release(_queue);
    [super dealloc];
}

- (dispatch_queue_t)sim_queue { return _queue; }
- (VZVirtualMachineConfiguration *)sim_configuration { return _configuration; }
- (SimGuest *)sim_guest { return _guest; }

- (void)sim_assertQueue:(const char *)what
{
    sim_assert_queue(_queue, what);
    if (strstr(what, " sim_") == NULL) [self sim_flushDeferred];
}

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

- (long)sim_clientReferences
{
    return (long)[self retainCount] - __atomic_load_n(&_internalRefs, __ATOMIC_SEQ_CST);
}

- (void)sim_defer:(struct pending *)p
{
    p->next = _deferred;
    _deferred = p;
}

- (void)sim_undefer:(struct pending *)p
{
    for (struct pending **at = &_deferred; *at != NULL; at = &(*at)->next)
        if (*at == p) { *at = p->next; break; }
    p->next = NULL;
}

/* The client called into the machine: steps waiting for that run after the call. */
- (void)sim_flushDeferred
{
    while (_deferred != NULL) {
        struct pending *p = _deferred;
        _deferred = p->next;
        p->next = NULL;
        p->place = PENDING_FLUSHED;
        dispatch_async_f(_queue, p, pending_flushed);
    }
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
    if (pinned ? pinned_kvo_off_queue : (int)sim_choose(2)) {
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
DEVICE_GETTER(graphicsDevices)

/* ---- start ---- */

static void start_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    [vm sim_finishStart:handler];
}

- (void)sim_finishStart:(void (^)(NSError *))handler
{
    long code = __atomic_exchange_n(&fail_next_start, 0, __ATOMIC_SEQ_CST);
    /* VZ opens the kernel and RAM disk here, not in validateWithError: (vz_boot_loader.m). */
    NSError *error = [(VZBootLoader *)[_configuration bootLoader] sim_startError];
    if (code != 0)
        error = [NSError errorWithDomain:VZErrorDomain code:code userInfo:@{
            NSLocalizedDescriptionKey : @"The virtual machine failed to start.",
            NSLocalizedFailureReasonErrorKey : @"Internal Virtualization error.",
        }];
    if (error != nil) {
        [self sim_setState:VZVirtualMachineStateStopped];
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
    for (VZVirtioConsoleDevice *device in _consoleDevices) [device sim_guestBooted];
    sim_storage_vm_started(self);
    callback(self, handler, complete_ok);
}

- (void)startWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine startWithCompletionHandler:]"];
    if (![self canStart]) {
        callback(self, completionHandler, complete_with_error);
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
    callback(vm, handler, complete_ok);
}

static void resume_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    [[vm sim_guest] setPaused:NO];
    [vm sim_setState:VZVirtualMachineStateRunning];
    callback(vm, handler, complete_ok);
}

- (void)pauseWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine pauseWithCompletionHandler:]"];
    if (![self canPause]) {
        callback(self, completionHandler, complete_with_error);
        return;
    }
    [self sim_setState:VZVirtualMachineStatePausing];
    later(self, 2, completionHandler, pause_step);
}

- (void)resumeWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine resumeWithCompletionHandler:]"];
    if (![self canResume]) {
        callback(self, completionHandler, complete_with_error);
        return;
    }
    [self sim_setState:VZVirtualMachineStateResuming];
    later(self, 2, completionHandler, resume_step);
}

/* ---- stop (force) ---- */

- (void)sim_halt
{
    [_guest halt];
    for (VZVirtioConsoleDevice *device in _consoleDevices) [device sim_guestHalted];
    sim_unregister_running(self);
}

static void stop_step(VZVirtualMachine *vm, void (^handler)(NSError *))
{
    [vm sim_halt];
    [vm sim_setState:VZVirtualMachineStateStopped];
    callback(vm, handler, complete_ok);
}

- (void)stopWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [self sim_assertQueue:"-[VZVirtualMachine stopWithCompletionHandler:]"];
    if (![self canStop]) {
        callback(self, completionHandler, complete_with_error);
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
    if (pinned ? pinned_delegate_first : (int)sim_choose(2)) {
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
    /* VZErrorNetworkError is macOS 13; before it the framework had no such code. */
    NSInteger code = sim_macos_at_least(13, 0) ? VZErrorNetworkError : VZErrorInternal;
    NSError *error = [NSError errorWithDomain:VZErrorDomain code:code userInfo:@{
        NSLocalizedDescriptionKey : @"The network attachment was disconnected.",
    }];
    SEL sel = @selector(virtualMachine:networkDevice:attachmentWasDisconnectedWithError:);
    [self sim_enterCallback];
    /* The delegate method is macOS 12: macOS 11 tells nobody. */
    if (sim_macos_at_least(12, 0) && [_delegate respondsToSelector:sel])
        [_delegate virtualMachine:self networkDevice:device attachmentWasDisconnectedWithError:error];
    [self sim_exitCallback];
}

@end

/* ---- control hooks (called by tests through arcbox_vz_sim) ---- */

void sim_guest_fail_next_start(long code) { __atomic_store_n(&fail_next_start, code, __ATOMIC_SEQ_CST); }
void sim_guest_set_shutdown_delay_ms(unsigned ms) { shutdown_delay_ms = ms; }
/* Pins what the scheduler would choose (tests of one order); a negative delay unpins. */
void sim_set_callback_order(int delay_ms, int delegate_before_state, int kvo_on_other_thread)
{
    pinned = delay_ms >= 0;
    pinned_delay_ms = delay_ms >= 0 ? (unsigned)delay_ms : 0;
    pinned_delegate_first = delegate_before_state;
    pinned_kvo_off_queue = kvo_on_other_thread;
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

static void console_port_on_queue(void *ctx)
{
    struct hook_call *c = ctx;
    unsigned long arg = (unsigned long)c->arg;
    NSUInteger device = arg >> 33, port = (arg >> 1) & 0xffffffffu;
    NSArray *devices = sim_macos_at_least(13, 0) ? [c->vm consoleDevices] : nil;
    c->result = device < [devices count]
        ? [[devices objectAtIndex:device] sim_guestSetPort:port open:(BOOL)(arg & 1)]
        : -1;
}

long sim_console_port_set_open(unsigned device, unsigned port, int open)
{
    long arg = (long)(((unsigned long)device << 33) | ((unsigned long)port << 1) | (open != 0));
    return on_last_running(console_port_on_queue, arg);
}

/* The guest powers itself off (like `poweroff` in the guest). */
long sim_guest_power_off(void) { return on_last_running(power_off_on_queue, 0); }
