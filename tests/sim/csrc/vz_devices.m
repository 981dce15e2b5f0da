/*
 * Fake "other devices": virtio-vsock, entropy and memory balloon configurations,
 * the virtio-gpu device and its scanouts, the USB keyboard and pointing device, and
 * the XHCI controller configuration.
 *
 * These are plain value objects in VZ (not queue-bound). Copies are real copies, as
 * VZVirtualMachine copies its configuration. The one-socket / one-balloon limits
 * are checked by the configuration's fake (vz_configuration.m); what is checked here
 * is what Apple documents per device: a virtio-gpu device has at most one scanout,
 * and a scanout's size is positive.
 */
#include "sim_vz.h"

/* ---- virtio-vsock (11.0) ---- */
@implementation VZSocketDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [[[self class] allocWithZone:zone] init]; }
@end

@implementation VZVirtioSocketDeviceConfiguration
- (instancetype)init { return [super init]; }
@end

/* ---- virtio-rng (11.0) ---- */
@implementation VZEntropyDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [[[self class] allocWithZone:zone] init]; }
@end

@implementation VZVirtioEntropyDeviceConfiguration
- (instancetype)init { return [super init]; }
@end

/* ---- virtio traditional memory balloon (11.0) ---- */
@implementation VZMemoryBalloonDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [[[self class] allocWithZone:zone] init]; }
@end

@implementation VZVirtioTraditionalMemoryBalloonDeviceConfiguration
- (instancetype)init { return [super init]; }
@end

/* ---- virtio-gpu (13.0) ---- */
@implementation VZGraphicsDisplayConfiguration
- (id)copyWithZone:(NSZone *)zone { return [self retain]; }
@end

@implementation VZVirtioGraphicsScanoutConfiguration
@synthesize widthInPixels = _widthInPixels;
@synthesize heightInPixels = _heightInPixels;

/* VZ neither raises nor clamps here: a bad size is reported by -validateWithError:. */
- (instancetype)initWithWidthInPixels:(NSInteger)widthInPixels heightInPixels:(NSInteger)heightInPixels
{
    if ((self = [super init]) == nil) return nil;
    _widthInPixels = widthInPixels;
    _heightInPixels = heightInPixels;
    return self;
}

- (id)copyWithZone:(NSZone *)zone
{
    return [[[self class] allocWithZone:zone] initWithWidthInPixels:_widthInPixels
                                                     heightInPixels:_heightInPixels];
}

- (NSString *)sim_invalidReason
{
    if (_widthInPixels <= 0 || _heightInPixels <= 0)
        return [NSString stringWithFormat:@"Invalid scanout size %ldx%ld: the width and "
                                           "height in pixels must be greater than 0.",
                                          (long)_widthInPixels, (long)_heightInPixels];
    return nil;
}
@end

@implementation VZGraphicsDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [self retain]; }
@end

@implementation VZVirtioGraphicsDeviceConfiguration
@synthesize scanouts = _scanouts;

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _scanouts = [[NSArray alloc] init];
    return self;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioGraphicsDeviceConfiguration *copy = [[[self class] allocWithZone:zone] init];
    NSArray *scanouts = [[NSArray alloc] initWithArray:_scanouts copyItems:YES];
    copy.scanouts = scanouts;
    [scanouts release];
    return copy;
}

/* Apple documents "Maximum of one scanout is supported." and nothing about zero: a
 * device without a scanout (the default) is accepted. */
- (NSString *)sim_invalidReason
{
    if ([_scanouts count] > 1)
        return [NSString stringWithFormat:@"Invalid virtio graphics device: %lu scanouts were "
                                           "specified, but a maximum of one scanout is supported.",
                                          (unsigned long)[_scanouts count]];
    for (VZVirtioGraphicsScanoutConfiguration *scanout in _scanouts) {
        NSString *reason = [scanout sim_invalidReason];
        if (reason != nil) return reason;
    }
    return nil;
}

- (void)dealloc
{
    [_scanouts release];
    [super dealloc];
}
@end

/* ---- USB keyboard (12.0) ---- */
@implementation VZKeyboardConfiguration
- (id)copyWithZone:(NSZone *)zone { return [[[self class] allocWithZone:zone] init]; }
@end

@implementation VZUSBKeyboardConfiguration
- (instancetype)init { return [super init]; }
@end

/* ---- USB screen-coordinate pointing device (12.0) ---- */
@implementation VZPointingDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [[[self class] allocWithZone:zone] init]; }
@end

@implementation VZUSBScreenCoordinatePointingDeviceConfiguration
- (instancetype)init { return [super init]; }
@end

/* ---- USB controllers (15.0) ---- */
@implementation VZUSBControllerConfiguration
@synthesize usbDevices = _usbDevices;

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _usbDevices = [[NSArray alloc] init];
    return self;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZUSBControllerConfiguration *copy = [[[self class] allocWithZone:zone] init];
    copy.usbDevices = _usbDevices;
    return copy;
}

- (void)dealloc
{
    [_usbDevices release];
    [super dealloc];
}
@end

@implementation VZXHCIControllerConfiguration
- (instancetype)init { return [super init]; }
@end
