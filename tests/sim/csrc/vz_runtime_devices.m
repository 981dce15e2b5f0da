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
    return [_ports objectForKey:[NSNumber numberWithUnsignedInteger:portIndex]];
}
@end

@implementation VZConsoleDevice
@end

@implementation VZVirtioConsoleDevice
@synthesize delegate = _delegate;

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioConsoleDeviceConfiguration *)configuration
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _ports = [[VZVirtioConsolePortArray alloc] sim_initWithMachine:machine configuration:configuration];
    return self;
}

- (void)dealloc
{
    [_ports release];
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
