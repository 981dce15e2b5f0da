/*
 * Fake runtime devices of a running VZVirtualMachine: memory balloon, virtiofs,
 * network, virtio console and the USB (XHCI) controller. Every member Apple marks as
 * VM-queue-only asserts the queue.
 */
#include <Block.h>
#include <stdlib.h>
#include "sim_vz_runtime.h"

#define MIB (1024ull * 1024)

@implementation VZMemoryBalloonDevice
@end

@implementation VZVirtioTraditionalMemoryBalloonDevice

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _targetVirtualMachineMemorySize = [[machine sim_configuration] memorySize];
    return self;
}

- (unsigned long long)targetVirtualMachineMemorySize
{
    [_machine sim_assertQueue:"-[VZVirtioTraditionalMemoryBalloonDevice targetVirtualMachineMemorySize]"];
    return _targetVirtualMachineMemorySize;
}

- (void)setTargetVirtualMachineMemorySize:(unsigned long long)size
{
    [_machine sim_assertQueue:"-[VZVirtioTraditionalMemoryBalloonDevice setTargetVirtualMachineMemorySize:]"];
    /* Rounded down to a MiB and clamped to [minimumAllowedMemorySize, memorySize]. */
    unsigned long long min = [VZVirtualMachineConfiguration minimumAllowedMemorySize];
    unsigned long long max = [[_machine sim_configuration] memorySize];
    size -= size % MIB;
    if (size < min) size = min;
    if (size > max) size = max;
    _targetVirtualMachineMemorySize = size;
}
@end

@implementation VZDirectorySharingDevice
@end

@implementation VZVirtioFileSystemDevice
@synthesize tag = _tag;

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioFileSystemDeviceConfiguration *)configuration
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _tag = [[configuration tag] copy];
    _share = [[configuration share] retain];
    return self;
}

- (void)dealloc
{
    [_tag release];
    [_share release];
    [super dealloc];
}

- (VZDirectoryShare *)share
{
    [_machine sim_assertQueue:"-[VZVirtioFileSystemDevice share]"];
    return _share;
}

- (void)setShare:(VZDirectoryShare *)share
{
    [_machine sim_assertQueue:"-[VZVirtioFileSystemDevice setShare:]"];
    /* Documented: a Rosetta share cannot be set at run time. */
    Class rosetta = NSClassFromString(@"VZLinuxRosettaDirectoryShare");
    if (rosetta != Nil && [share isKindOfClass:rosetta])
        SIM_RAISE(@"A VZLinuxRosettaDirectoryShare cannot be set on a running device.");
    [share retain];
    [_share release];
    _share = share;
}
@end

@implementation VZNetworkDevice

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                         attachment:(VZNetworkDeviceAttachment *)attachment
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _attachment = [attachment retain];
    return self;
}

- (void)dealloc
{
    [_attachment release];
    [super dealloc];
}

- (VZNetworkDeviceAttachment *)attachment
{
    [_machine sim_assertQueue:"-[VZNetworkDevice attachment]"];
    return _attachment;
}

- (void)setAttachment:(VZNetworkDeviceAttachment *)attachment
{
    [_machine sim_assertQueue:"-[VZNetworkDevice setAttachment:]"];
    [attachment retain];
    [_attachment release];
    _attachment = attachment;
}
@end

@implementation VZVirtioConsolePort
@synthesize name = _name;

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioConsolePortConfiguration *)configuration
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _name = [[configuration name] copy];
    _attachment = [[configuration attachment] retain];
    return self;
}

- (void)dealloc
{
    [_name release];
    [_attachment release];
    [super dealloc];
}

- (VZSerialPortAttachment *)attachment
{
    [_machine sim_assertQueue:"-[VZVirtioConsolePort attachment]"];
    return _attachment;
}

- (void)setAttachment:(VZSerialPortAttachment *)attachment
{
    [_machine sim_assertQueue:"-[VZVirtioConsolePort setAttachment:]"];
    [attachment retain];
    [_attachment release];
    _attachment = attachment;
}
@end

@implementation VZVirtioConsolePortArray
@synthesize maximumPortCount = _maximumPortCount;

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioConsoleDeviceConfiguration *)configuration
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _ports = [[NSMutableDictionary alloc] init];
    VZVirtioConsolePortConfigurationArray *configs = [configuration ports];
    _maximumPortCount = [configs maximumPortCount];
    for (uint32_t i = 0; i < _maximumPortCount; i++) {
        VZVirtioConsolePortConfiguration *config = [configs objectAtIndexedSubscript:i];
        if (config == nil) continue;
        VZVirtioConsolePort *port = [[VZVirtioConsolePort alloc] sim_initWithMachine:machine
                                                                       configuration:config];
        [_ports setObject:port forKey:[NSNumber numberWithUnsignedInt:i]];
        [port release];
    }
    return self;
}

- (void)dealloc
{
    [_ports release];
    [super dealloc];
}

- (VZVirtioConsolePort *)objectAtIndexedSubscript:(NSUInteger)portIndex
{
    [_machine sim_assertQueue:"-[VZVirtioConsolePortArray objectAtIndexedSubscript:]"];
    return [self sim_portAtIndex:portIndex];
}

- (VZVirtioConsolePort *)sim_portAtIndex:(NSUInteger)portIndex
{
    return [_ports objectForKey:[NSNumber numberWithUnsignedInteger:portIndex]];
}
@end

@implementation VZConsoleDevice
@end

/*
 * VZVirtioConsoleDeviceDelegate (13.0): the guest opening or closing a port is told
 * later, on the VM queue (how much later is the scheduler's), one event per timer,
 * oldest first, so the events of one port never overtake each other. The delegate
 * is weak in VZ: the fake keeps an unretained pointer, so a client must clear it
 * before its delegate goes away (a dangling one crashes here, as a zombie would).
 */
struct console_event {
    VZVirtioConsoleDevice *device; /* retained */
    VZVirtualMachine *vm;          /* held */
};

static void console_event_fire(void *ctx)
{
    struct console_event *e = ctx;
    [e->device sim_deliverOldestEvent];
    [e->device release];
    [e->vm sim_unhold];
    free(e);
}

@implementation VZVirtioConsoleDevice

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioConsoleDeviceConfiguration *)configuration
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _ports = [[VZVirtioConsolePortArray alloc] sim_initWithMachine:machine configuration:configuration];
    _openPorts = [[NSMutableSet alloc] init];
    _pendingEvents = [[NSMutableArray alloc] init];
    return self;
}

- (id)delegate
{
    [_machine sim_assertQueue:"-[VZVirtioConsoleDevice delegate]"];
    return _delegate;
}

- (void)setDelegate:(id)delegate
{
    [_machine sim_assertQueue:"-[VZVirtioConsoleDevice setDelegate:]"];
    _delegate = delegate;
}

- (void)sim_deliverOldestEvent
{
    if ([_pendingEvents count] == 0) return;
    NSArray *event = [[_pendingEvents objectAtIndex:0] retain];
    [_pendingEvents removeObjectAtIndex:0];
    id port = [event objectAtIndex:0];
    BOOL open = [[event objectAtIndex:1] boolValue];
    void *pool = objc_autoreleasePoolPush();
    [_machine sim_enterCallback];
    SEL sel = open ? @selector(consoleDevice:didOpenPort:) : @selector(consoleDevice:didClosePort:);
    if (_delegate != nil && [_delegate respondsToSelector:sel]) {
        if (open) [_delegate consoleDevice:self didOpenPort:port];
        else [_delegate consoleDevice:self didClosePort:port];
    }
    [_machine sim_exitCallback];
    objc_autoreleasePoolPop(pool);
    [event release];
}

- (long)sim_guestSetPort:(NSUInteger)index open:(BOOL)open
{
    [_machine sim_assertQueue:"-[VZVirtioConsoleDevice sim_guestSetPort:open:]"];
    VZVirtioConsolePort *port = [_ports sim_portAtIndex:index];
    if (port == nil) return -1;
    NSNumber *key = [NSNumber numberWithUnsignedInteger:index];
    if ([_openPorts containsObject:key] == open) return 0;
    if (open) [_openPorts addObject:key];
    else [_openPorts removeObject:key];
    [_pendingEvents addObject:@[ port, [NSNumber numberWithBool:open] ]];
    struct console_event *e = malloc(sizeof *e);
    if (e == NULL) sim_fatal("out of memory");
    e->device = [self retain];
    e->vm = [_machine sim_hold];
    sim_after_ms([_machine sim_queue], sim_choose(3) == 0 ? 0 : 1 + sim_choose(5), e,
                 console_event_fire);
    return 1;
}

- (void)sim_guestBooted
{
    uint32_t count = [_ports maximumPortCount];
    for (uint32_t i = 0; i < count; i++)
        if ([[_ports sim_portAtIndex:i] name] != nil) [self sim_guestSetPort:i open:YES];
}

- (void)sim_guestHalted
{
    uint32_t count = [_ports maximumPortCount];
    for (uint32_t i = 0; i < count; i++) [self sim_guestSetPort:i open:NO];
}

- (void)dealloc
{
    [_ports release];
    [_openPorts release];
    [_pendingEvents release];
    [super dealloc];
}

- (VZVirtioConsolePortArray *)ports
{
    [_machine sim_assertQueue:"-[VZVirtioConsoleDevice ports]"];
    return _ports;
}
@end

/* ---- USB ---- */

struct usb_request {
    VZUSBController *controller;
    id device;
    BOOL attach;
    void (^handler)(NSError *);
};

@implementation VZUSBController

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _usbDevices = [[NSMutableArray alloc] init];
    return self;
}

- (void)dealloc
{
    [_usbDevices release];
    [super dealloc];
}

- (NSArray *)usbDevices
{
    [_machine sim_assertQueue:"-[VZUSBController usbDevices]"];
    return [[_usbDevices copy] autorelease];
}

static void finish_usb(void *ctx)
{
    struct usb_request *r = ctx;
    NSMutableArray *devices = r->controller->_usbDevices;
    NSError *error = nil;
    if (r->attach) {
        if ([devices containsObject:r->device]) {
            error = [NSError errorWithDomain:VZErrorDomain code:VZErrorDeviceAlreadyAttached
                                    userInfo:@{ NSLocalizedDescriptionKey : @"The device is already attached." }];
        } else {
            [devices addObject:r->device];
            [r->device sim_setController:r->controller];
        }
    } else if (![devices containsObject:r->device]) {
        error = [NSError errorWithDomain:VZErrorDomain code:VZErrorDeviceNotFound
                                userInfo:@{ NSLocalizedDescriptionKey : @"The device is not attached." }];
    } else {
        [r->device sim_setController:nil];
        [devices removeObject:r->device];
    }
    [r->controller->_machine sim_enterCallback];
    r->handler(error);
    [r->controller->_machine sim_exitCallback];
    _Block_release(r->handler);
    [r->device release];
    [r->controller->_machine sim_unhold];
    [r->controller release];
    free(r);
}

- (void)sim_usb:(id)device attach:(BOOL)attach handler:(void (^)(NSError *))handler
{
    struct usb_request *r = malloc(sizeof *r);
    if (r == NULL) sim_fatal("out of memory");
    r->controller = [self retain];
    [_machine sim_hold];
    r->device = [device retain];
    r->attach = attach;
    r->handler = _Block_copy(handler);
    /* How much later the handler comes is Apple's to choose: the scheduler's. */
    sim_after_ms([_machine sim_queue], sim_choose(5), r, finish_usb);
}

- (void)attachDevice:(id)device completionHandler:(void (^)(NSError *))completionHandler
{
    [_machine sim_assertQueue:"-[VZUSBController attachDevice:completionHandler:]"];
    [self sim_usb:device attach:YES handler:completionHandler];
}

- (void)detachDevice:(id)device completionHandler:(void (^)(NSError *))completionHandler
{
    [_machine sim_assertQueue:"-[VZUSBController detachDevice:completionHandler:]"];
    [self sim_usb:device attach:NO handler:completionHandler];
}
@end

@implementation VZXHCIController
@end

@implementation VZUSBMassStorageDevice
@synthesize usbController = _usbController;
@synthesize uuid = _uuid;

- (instancetype)initWithConfiguration:(VZUSBMassStorageDeviceConfiguration *)configuration
{
    if ((self = [super init]) == nil) return nil;
    _configuration = [configuration retain];
    _uuid = [[configuration uuid] copy];
    return self;
}

- (void)sim_setController:(VZUSBController *)controller { _usbController = controller; }

- (void)dealloc
{
    [_configuration release];
    [_uuid release];
    [super dealloc];
}
@end
