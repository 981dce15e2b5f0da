/* Fake VZGenericPlatformConfiguration and VZGenericMachineIdentifier. */
#include <stdlib.h>
#include "sim_vz.h"

@implementation VZPlatformConfiguration
- (id)copyWithZone:(NSZone *)zone { return [self retain]; }
@end

/* The data representation of the fake identifier: a signature and 16 random bytes. */
static const char identifier_magic[8] = "SIMVZMID";

@implementation VZGenericMachineIdentifier
@synthesize dataRepresentation = _dataRepresentation;

- (instancetype)init
{
    unsigned char bytes[sizeof identifier_magic + 16];
    memcpy(bytes, identifier_magic, sizeof identifier_magic);
    for (size_t i = sizeof identifier_magic; i < sizeof bytes; i++) bytes[i] = (unsigned char)random();
    return [self initWithDataRepresentation:[NSData dataWithBytes:bytes length:sizeof bytes]];
}

- (instancetype)initWithDataRepresentation:(NSData *)data
{
    if ((self = [super init]) == nil) return nil;
    if ([data length] != sizeof identifier_magic + 16
        || memcmp([data bytes], identifier_magic, sizeof identifier_magic) != 0) {
        [self release];
        return nil;
    }
    _dataRepresentation = [data copy];
    return self;
}

- (id)copyWithZone:(NSZone *)zone { return [self retain]; }

- (void)dealloc
{
    [_dataRepresentation release];
    [super dealloc];
}
@end

@implementation VZGenericPlatformConfiguration
@synthesize machineIdentifier = _machineIdentifier;
@synthesize nestedVirtualizationEnabled = _nestedVirtualizationEnabled;

/* The simulated Mac is not an M3: nested virtualization is unsupported. */
+ (BOOL)isNestedVirtualizationSupported { return NO; }

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _machineIdentifier = [[VZGenericMachineIdentifier alloc] init];
    return self;
}

- (NSString *)sim_invalidReason
{
    if (_nestedVirtualizationEnabled && ![[self class] isNestedVirtualizationSupported])
        return @"Nested virtualization is not supported on this device.";
    return nil;
}

- (void)dealloc
{
    [_machineIdentifier release];
    [super dealloc];
}
@end
