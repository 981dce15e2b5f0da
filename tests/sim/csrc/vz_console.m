/*
 * Fake virtio console (macOS 13): VZVirtioConsoleDeviceConfiguration, its
 * VZVirtioConsolePortConfigurationArray and VZVirtioConsolePortConfiguration.
 *
 * From VZVirtioConsolePortConfigurationArray.h: "The index in the array corresponds
 * to the port index used in the virtual machine. A maximumPortCount value may be set
 * but must be larger than the highest indexed port. If no maximumPortCount value is
 * set, the highest indexed port will be used." and "The default is the number of
 * ports attached to this device." Validation fails when a port index is not below an
 * explicitly set maximumPortCount.
 */
#include "sim_vz.h"

@interface VZVirtioConsolePortConfigurationArray ()
- (uint32_t)sim_highestIndexPlusOne;
- (NSString *)sim_invalidReason;
@end

@implementation VZConsolePortConfiguration
@synthesize attachment = _attachment;

- (void)setAttachment:(VZSerialPortAttachment *)attachment
{
    if (attachment != nil && ![attachment isKindOfClass:[VZSerialPortAttachment class]])
        SIM_RAISE(@"The attachment is not a VZSerialPortAttachment.");
    [attachment retain];
    [_attachment release];
    _attachment = attachment;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZConsolePortConfiguration *copy = [[[self class] allocWithZone:zone] init];
    copy.attachment = _attachment;
    return copy;
}

- (void)dealloc
{
    [_attachment release];
    [super dealloc];
}
@end

@implementation VZVirtioConsolePortConfiguration
@synthesize name = _name;
@synthesize isConsole = _isConsole;

- (instancetype)init { return [super init]; }

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioConsolePortConfiguration *copy = [super copyWithZone:zone];
    copy.name = _name;
    copy.isConsole = _isConsole;
    return copy;
}

- (void)dealloc
{
    [_name release];
    [super dealloc];
}
@end

@implementation VZVirtioConsolePortConfigurationArray

/* Apple's -init is NS_UNAVAILABLE to clients; the device makes its array. */
- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _ports = [[NSMutableDictionary alloc] init];
    return self;
}

- (uint32_t)sim_highestIndexPlusOne
{
    uint32_t count = 0;
    for (NSNumber *key in _ports) {
        NSUInteger index = [key unsignedIntegerValue];
        if (index + 1 > count) count = (uint32_t)(index + 1);
    }
    return count;
}

- (uint32_t)maximumPortCount
{
    return _maximumPortCountSet ? _maximumPortCount : [self sim_highestIndexPlusOne];
}

- (void)setMaximumPortCount:(uint32_t)maximumPortCount
{
    _maximumPortCount = maximumPortCount;
    _maximumPortCountSet = YES;
}

- (VZVirtioConsolePortConfiguration *)objectAtIndexedSubscript:(NSUInteger)portIndex
{
    return [_ports objectForKey:[NSNumber numberWithUnsignedInteger:portIndex]];
}

- (void)setObject:(VZVirtioConsolePortConfiguration *)configuration
    atIndexedSubscript:(NSUInteger)portIndex
{
    NSNumber *key = [NSNumber numberWithUnsignedInteger:portIndex];
    if (configuration == nil) {
        [_ports removeObjectForKey:key];
        return;
    }
    if (![configuration isKindOfClass:[VZVirtioConsolePortConfiguration class]])
        SIM_RAISE(@"The port configuration is not a VZVirtioConsolePortConfiguration.");
    [_ports setObject:configuration forKey:key];
}

- (NSString *)sim_invalidReason
{
    if (!_maximumPortCountSet) return nil;
    for (NSNumber *key in _ports) {
        NSUInteger index = [key unsignedIntegerValue];
        if (index >= _maximumPortCount)
            return [NSString stringWithFormat:@"The console port index %lu is not less than the "
                                               "maximum port count %u.",
                                              (unsigned long)index, _maximumPortCount];
    }
    return nil;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioConsolePortConfigurationArray *copy = [[[self class] allocWithZone:zone] init];
    for (NSNumber *key in _ports) {
        VZVirtioConsolePortConfiguration *port = [[_ports objectForKey:key] copy];
        [copy setObject:port atIndexedSubscript:[key unsignedIntegerValue]];
        [port release];
    }
    if (_maximumPortCountSet) [copy setMaximumPortCount:_maximumPortCount];
    return copy;
}

- (void)dealloc
{
    [_ports release];
    [super dealloc];
}
@end

@implementation VZConsoleDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [self retain]; }
@end

@implementation VZVirtioConsoleDeviceConfiguration
@synthesize ports = _ports;

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _ports = [[VZVirtioConsolePortConfigurationArray alloc] init];
    return self;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioConsoleDeviceConfiguration *copy = [[[self class] allocWithZone:zone] init];
    [copy->_ports release];
    copy->_ports = [_ports copy];
    return copy;
}

- (NSString *)sim_invalidReason
{
    return [_ports sim_invalidReason];
}

- (void)dealloc
{
    [_ports release];
    [super dealloc];
}
@end

/*
 * VZSpiceAgentPortAttachment (13.0): sharesClipboard defaults to YES (vz-api.tsv).
 * The port name is the usual SPICE agent channel name; Apple does not document the
 * string (callers must read +spiceAgentPortName), so it is not checked anywhere.
 * The fake guest never runs an agent: nothing is shared.
 */
@implementation VZSpiceAgentPortAttachment
@synthesize sharesClipboard = _sharesClipboard;

+ (NSString *)spiceAgentPortName { return @"com.redhat.spice.0"; }

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _sharesClipboard = YES;
    return self;
}
@end
