/* VZErrorDomain and the NSErrors the fake framework returns. */
#include "sim_vz.h"

NSString *const VZErrorDomain = @"VZErrorDomain";

/* The NSLocalizedFailure VZ puts on an error of this code, as seen in real errors:
 * code 1 "Internal Virtualization error." (niw/TinyLinux#1, Code-Hex/vz#157), code 2
 * "Invalid virtual machine configuration." (evansm7/vftool#24, s-u/macosvm#13),
 * code 5 "Invalid disk image." (apple/containerization#832). Other codes: unverified,
 * the fake keeps the configuration wording. */
static NSString *failure_for(NSInteger code)
{
    switch (code) {
    case VZErrorInternal: return @"Internal Virtualization error.";
    case VZErrorInvalidDiskImage: return @"Invalid disk image.";
    default: return @"Invalid virtual machine configuration.";
    }
}

NSError *sim_vz_error(NSInteger code, NSString *reason)
{
    NSDictionary *info = @{
        @"NSLocalizedFailure" : failure_for(code),
        NSLocalizedDescriptionKey : reason,
        NSLocalizedFailureReasonErrorKey : reason,
    };
    return [NSError errorWithDomain:VZErrorDomain code:code userInfo:info];
}
