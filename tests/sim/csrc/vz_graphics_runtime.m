/*
 * Runtime graphics devices and their displays (macOS 14): VZGraphicsDevice,
 * VZVirtioGraphicsDevice, VZMacGraphicsDevice, VZGraphicsDisplay,
 * VZVirtioGraphicsScanout, VZMacGraphicsDisplay.
 *
 * - VZVirtualMachine.graphicsDevices has one runtime device per graphics device
 *   configuration, in configuration order (vz-api.tsv: "Real class
 *   VZMacGraphicsDevice or VZVirtioGraphicsDevice, same order as configuration"):
 *   a VZVirtioGraphicsDevice with one VZVirtioGraphicsScanout per scanout, or a
 *   VZMacGraphicsDevice with one VZMacGraphicsDisplay per display configuration, at
 *   the configured size in pixels (and, for a Mac display, its pixelsPerInch);
 *   displays in the order configured;
 * - every member asserts the VM queue (the tsv: `displays` VMQ; `sizeInPixels`,
 *   `reconfigureWithSizeInPixels:error:`, `addObserver:`, `removeObserver:` VMQ
 *   assumed): the strict side;
 * - observers are not retained (Apple does not say): a client that lets one go while
 *   it is registered is caught by the zombies;
 * - `reconfigureWithSizeInPixels:error:` refuses a size that is not positive whole
 *   pixels (NO + error), otherwise passes the request on: a moment later (the
 *   scheduler's choice) the observers hear `displayDidBeginReconfiguration:`, then,
 *   later again, the size changes and they hear `displayDidEndReconfiguration:`, on
 *   the VM queue (the header: observers are called on the VM's queue). A guest that
 *   is not running ignores the request: no callbacks.
 */
#include <math.h>
#include <stdlib.h>
#include "sim_vz.h"
#include "sim_vz_arm64.h"
#include "sim_vz_runtime.h"

typedef NSSize CGSize;

@protocol VZGraphicsDisplayObserver <NSObject>
@optional
- (void)displayDidBeginReconfiguration:(id)display;
- (void)displayDidEndReconfiguration:(id)display;
@end

@interface VZGraphicsDisplay : SimObject
{
    VZVirtualMachine *_machine; /* unretained: the VM owns its devices */
    CGSize _size;
    id *_observers;             /* not retained */
    size_t _observerCount;
}
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine size:(CGSize)size;
@end

@interface VZVirtioGraphicsScanout : VZGraphicsDisplay
@end

@interface VZGraphicsDevice : SimObject
{
    VZVirtualMachine *_machine;
    NSArray *_displays;
}
@end

@interface VZVirtioGraphicsDevice : VZGraphicsDevice
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioGraphicsDeviceConfiguration *)configuration;
@end

/* The runtime side of a VZMacGraphicsDisplayConfiguration: `pixelsPerInch`, readonly
 * (vz-api.tsv, 14.0; VMQ assumed, like the rest of the display). */
@interface VZMacGraphicsDisplay : VZGraphicsDisplay
{
    NSInteger _pixelsPerInch;
}
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                               size:(CGSize)size
                      pixelsPerInch:(NSInteger)pixelsPerInch;
@end

/* The runtime side of a VZMacGraphicsDeviceConfiguration; no members of its own. */
@interface VZMacGraphicsDevice : VZGraphicsDevice
- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine configuration:(id)configuration;
@end

/* ---- VZGraphicsDisplay ---- */

struct reconfigure {
    VZGraphicsDisplay *display; /* retained */
    VZVirtualMachine *vm;       /* held (sim_hold) */
    CGSize size;
    int ended;                  /* 0: begin next, 1: end next */
};

static void reconfigure_step(void *ctx);

@implementation VZGraphicsDisplay

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine size:(CGSize)size
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    _size = size;
    return self;
}

- (void)dealloc
{
    free(_observers);
    [super dealloc];
}

- (CGSize)sizeInPixels
{
    [_machine sim_assertQueue:"-[VZGraphicsDisplay sizeInPixels]"];
    return _size;
}

- (BOOL)reconfigureWithSizeInPixels:(CGSize)sizeInPixels error:(NSError **)error
{
    [_machine sim_assertQueue:"-[VZGraphicsDisplay reconfigureWithSizeInPixels:error:]"];
    double w = sizeInPixels.width, h = sizeInPixels.height;
    if (!isfinite(w) || !isfinite(h) || w < 1 || h < 1 || w != floor(w) || h != floor(h)) {
        if (error != NULL)
            *error = sim_vz_error(VZErrorInvalidVirtualMachineConfiguration,
                                  @"The display size is invalid.");
        return NO;
    }
    NSInteger state = [_machine state];
    if (state != VZVirtualMachineStateRunning) return YES; /* passed on; nobody answers */
    struct reconfigure *r = calloc(1, sizeof *r);
    if (r == NULL) sim_fatal("out of memory");
    r->display = [self retain];
    r->vm = [_machine sim_hold];
    r->size = sizeInPixels;
    sim_after_ms([_machine sim_queue], sim_choose(4), r, reconfigure_step);
    return YES;
}

- (void)addObserver:(id)observer
{
    [_machine sim_assertQueue:"-[VZGraphicsDisplay addObserver:]"];
    if (observer == nil) SIM_RAISE(@"observer must not be nil");
    for (size_t i = 0; i < _observerCount; i++)
        if (_observers[i] == observer) return;
    id *grown = realloc(_observers, (_observerCount + 1) * sizeof *grown);
    if (grown == NULL) sim_fatal("out of memory");
    _observers = grown;
    _observers[_observerCount++] = observer;
}

- (void)removeObserver:(id)observer
{
    [_machine sim_assertQueue:"-[VZGraphicsDisplay removeObserver:]"];
    if (observer == nil) SIM_RAISE(@"observer must not be nil");
    for (size_t i = 0; i < _observerCount; i++) {
        if (_observers[i] == observer) {
            _observers[i] = _observers[--_observerCount];
            return;
        }
    }
}

/* Tells every observer registered now; one removed by an earlier call is skipped. */
- (void)sim_notify:(SEL)sel
{
    size_t n = _observerCount;
    id *snapshot = malloc((n ? n : 1) * sizeof *snapshot);
    if (snapshot == NULL) sim_fatal("out of memory");
    for (size_t i = 0; i < n; i++) snapshot[i] = _observers[i];
    for (size_t i = 0; i < n; i++) {
        BOOL still = NO;
        for (size_t j = 0; j < _observerCount; j++) still |= _observers[j] == snapshot[i];
        if (!still || ![snapshot[i] respondsToSelector:sel]) continue;
        [_machine sim_enterCallback];
        if (sel == @selector(displayDidBeginReconfiguration:))
            [snapshot[i] displayDidBeginReconfiguration:self];
        else
            [snapshot[i] displayDidEndReconfiguration:self];
        [_machine sim_exitCallback];
    }
    free(snapshot);
}

- (void)sim_applySize:(CGSize)size { _size = size; }

@end

static void reconfigure_step(void *ctx)
{
    struct reconfigure *r = ctx;
    [r->vm sim_assertQueue:"display reconfiguration"];
    if (!r->ended) {
        [r->display sim_notify:@selector(displayDidBeginReconfiguration:)];
        r->ended = 1;
        /* The guest answers with frames at the new size a while later. */
        sim_after_ms([r->vm sim_queue], 1 + sim_choose(4), r, reconfigure_step);
        return;
    }
    [r->display sim_applySize:r->size];
    [r->display sim_notify:@selector(displayDidEndReconfiguration:)];
    [r->display release];
    [r->vm sim_unhold];
    free(r);
}

@implementation VZVirtioGraphicsScanout
@end

/* ---- VZGraphicsDevice ---- */

@implementation VZGraphicsDevice

- (NSArray *)displays
{
    [_machine sim_assertQueue:"-[VZGraphicsDevice displays]"];
    return _displays;
}

- (void)dealloc
{
    [_displays release];
    [super dealloc];
}

@end

@implementation VZVirtioGraphicsDevice

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                      configuration:(VZVirtioGraphicsDeviceConfiguration *)configuration
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    NSMutableArray *displays = [NSMutableArray array];
    for (VZVirtioGraphicsScanoutConfiguration *scanout in [configuration scanouts]) {
        CGSize size = { (double)[scanout widthInPixels], (double)[scanout heightInPixels] };
        VZVirtioGraphicsScanout *display =
            [[VZVirtioGraphicsScanout alloc] sim_initWithMachine:machine size:size];
        [displays addObject:display];
        [display release];
    }
    _displays = [displays copy];
    return self;
}

@end

@implementation VZMacGraphicsDisplay

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine
                               size:(CGSize)size
                      pixelsPerInch:(NSInteger)pixelsPerInch
{
    if ((self = [super sim_initWithMachine:machine size:size]) == nil) return nil;
    _pixelsPerInch = pixelsPerInch;
    return self;
}

- (NSInteger)pixelsPerInch
{
    [_machine sim_assertQueue:"-[VZMacGraphicsDisplay pixelsPerInch]"];
    return _pixelsPerInch;
}

@end

@implementation VZMacGraphicsDevice

- (instancetype)sim_initWithMachine:(VZVirtualMachine *)machine configuration:(id)configuration
{
    if ((self = [super init]) == nil) return nil;
    _machine = machine;
    NSMutableArray *displays = [NSMutableArray array];
    for (VZMacGraphicsDisplayConfiguration *config in [configuration displays]) {
        CGSize size = { (double)[config widthInPixels], (double)[config heightInPixels] };
        VZMacGraphicsDisplay *display = [[VZMacGraphicsDisplay alloc]
            sim_initWithMachine:machine size:size pixelsPerInch:[config pixelsPerInch]];
        [displays addObject:display];
        [display release];
    }
    _displays = [displays copy];
    return self;
}

@end

/* The runtime graphics devices of `vm`, one per device configuration, in order: a
 * VZVirtioGraphicsDevice for a virtio-gpu configuration, a VZMacGraphicsDevice for a
 * Mac one. Before macOS 14 there are no runtime graphics objects. */
NSArray *sim_graphics_devices(VZVirtualMachine *vm, NSArray *configurations)
{
    NSMutableArray *devices = [NSMutableArray array];
    if (!sim_macos_at_least(14, 0)) return [devices copy];
    Class virtio = NSClassFromString(@"VZVirtioGraphicsDeviceConfiguration");
    Class mac = NSClassFromString(@"VZMacGraphicsDeviceConfiguration");
    for (id configuration in configurations) {
        VZGraphicsDevice *device;
        if (virtio != Nil && [configuration isKindOfClass:virtio])
            device = [[VZVirtioGraphicsDevice alloc] sim_initWithMachine:vm configuration:configuration];
        else if (mac != Nil && [configuration isKindOfClass:mac])
            device = [[VZMacGraphicsDevice alloc] sim_initWithMachine:vm configuration:configuration];
        else
            sim_fatal("a graphics device configuration of class %s has no runtime device",
                      class_getName(object_getClass(configuration)));
        [devices addObject:device];
        [device release];
    }
    return [devices copy];
}
