/*
 * Fake VZVirtualMachineConfiguration: Apple's selectors and types, default values and
 * the checks Apple documents for -validateWithError:.
 *
 * Device classes add their own documented checks by implementing
 * -sim_invalidReason (SimValidating); validateWithError: asks every device.
 */
#include "sim_vz.h"

/* Limits of the simulated Mac. */
#define SIM_MIN_CPUS 1
#define SIM_MAX_CPUS 16
#define SIM_MIN_MEMORY (128ull * 1024 * 1024)
#define SIM_MAX_MEMORY (32ull * 1024 * 1024 * 1024)

@implementation VZVirtualMachineConfiguration

@synthesize bootLoader = _bootLoader;
@synthesize memorySize = _memorySize;
@synthesize CPUCount = _CPUCount;
@synthesize platform = _platform;
@synthesize consoleDevices = _consoleDevices;
@synthesize directorySharingDevices = _directorySharingDevices;
@synthesize entropyDevices = _entropyDevices;
@synthesize memoryBalloonDevices = _memoryBalloonDevices;
@synthesize networkDevices = _networkDevices;
@synthesize serialPorts = _serialPorts;
@synthesize socketDevices = _socketDevices;
@synthesize storageDevices = _storageDevices;
@synthesize keyboards = _keyboards;
@synthesize pointingDevices = _pointingDevices;
@synthesize graphicsDevices = _graphicsDevices;
@synthesize usbControllers = _usbControllers;
@synthesize audioDevices = _audioDevices;

+ (uint64_t)minimumAllowedMemorySize { return SIM_MIN_MEMORY; }
+ (uint64_t)maximumAllowedMemorySize { return SIM_MAX_MEMORY; }
+ (NSUInteger)minimumAllowedCPUCount { return SIM_MIN_CPUS; }
+ (NSUInteger)maximumAllowedCPUCount { return SIM_MAX_CPUS; }

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _CPUCount = 1;
    _memorySize = SIM_MIN_MEMORY;
    _platform = [[VZGenericPlatformConfiguration alloc] init];
    NSArray *empty = [NSArray array];
    _consoleDevices = [empty copy];
    _directorySharingDevices = [empty copy];
    _entropyDevices = [empty copy];
    _memoryBalloonDevices = [empty copy];
    _networkDevices = [empty copy];
    _serialPorts = [empty copy];
    _socketDevices = [empty copy];
    _storageDevices = [empty copy];
    _keyboards = [empty copy];
    _pointingDevices = [empty copy];
    _graphicsDevices = [empty copy];
    _usbControllers = [empty copy];
    _audioDevices = [empty copy];
    return self;
}

- (void)dealloc
{
    [_bootLoader release];
    [_platform release];
    [_consoleDevices release];
    [_directorySharingDevices release];
    [_entropyDevices release];
    [_memoryBalloonDevices release];
    [_networkDevices release];
    [_serialPorts release];
    [_socketDevices release];
    [_storageDevices release];
    [_keyboards release];
    [_pointingDevices release];
    [_graphicsDevices release];
    [_usbControllers release];
    [_audioDevices release];
    [super dealloc];
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtualMachineConfiguration *copy = [[[self class] allocWithZone:zone] init];
    copy.bootLoader = _bootLoader;
    copy.memorySize = _memorySize;
    copy.CPUCount = _CPUCount;
    copy.platform = _platform;
    copy.consoleDevices = _consoleDevices;
    copy.directorySharingDevices = _directorySharingDevices;
    copy.entropyDevices = _entropyDevices;
    copy.memoryBalloonDevices = _memoryBalloonDevices;
    copy.networkDevices = _networkDevices;
    copy.serialPorts = _serialPorts;
    copy.socketDevices = _socketDevices;
    copy.storageDevices = _storageDevices;
    copy.keyboards = _keyboards;
    copy.pointingDevices = _pointingDevices;
    copy.graphicsDevices = _graphicsDevices;
    copy.usbControllers = _usbControllers;
    copy.audioDevices = _audioDevices;
    return copy;
}

static NSString *check_devices(NSArray *devices)
{
    for (id device in devices) {
        if ([device respondsToSelector:@selector(sim_invalidReason)]) {
            NSString *reason = [device sim_invalidReason];
            if (reason != nil) return reason;
        }
    }
    return nil;
}

- (NSString *)sim_invalidReason
{
    if (_CPUCount < SIM_MIN_CPUS || _CPUCount > SIM_MAX_CPUS)
        return [NSString stringWithFormat:@"The CPU count %lu is out of range.",
                                          (unsigned long)_CPUCount];
    if (_memorySize % (1024 * 1024) != 0)
        return @"The memory size must be a multiple of 1 MB.";
    if (_memorySize < SIM_MIN_MEMORY) return @"The memory size is too small.";
    if (_memorySize > SIM_MAX_MEMORY) return @"The memory size is too large.";
    if (_bootLoader == nil) return @"A boot loader must be specified.";
    if ([_socketDevices count] > 1) return @"Only one socket device is supported.";
    if ([_memoryBalloonDevices count] > 1) return @"Only one memory balloon device is supported.";
    if ([_platform respondsToSelector:@selector(sim_invalidReason)]) {
        NSString *reason = [(id<SimValidating>)_platform sim_invalidReason];
        if (reason != nil) return reason;
    }
    if ([_bootLoader respondsToSelector:@selector(sim_invalidReason)]) {
        NSString *reason = [(id<SimValidating>)_bootLoader sim_invalidReason];
        if (reason != nil) return reason;
    }
    NSArray *lists[] = { _consoleDevices, _directorySharingDevices, _entropyDevices,
                         _memoryBalloonDevices, _networkDevices, _serialPorts, _socketDevices,
                         _storageDevices, _keyboards, _pointingDevices, _graphicsDevices,
                         _usbControllers, _audioDevices };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        NSString *reason = check_devices(lists[i]);
        if (reason != nil) return reason;
    }
    /* virtiofs tags must be unique. */
    NSMutableSet *tags = [NSMutableSet set];
    for (id device in _directorySharingDevices) {
        NSString *tag = [device tag];
        if ([tags containsObject:tag])
            return [NSString stringWithFormat:@"The tag \"%@\" is used by more than one "
                                               "directory sharing device.", tag];
        [tags addObject:tag];
    }
    return nil;
}

- (BOOL)validateWithError:(NSError **)error
{
    NSString *reason = [self sim_invalidReason];
    if (reason == nil) return YES;
    if (error != NULL) *error = sim_vz_error(VZErrorInvalidVirtualMachineConfiguration, reason);
    return NO;
}

@end
