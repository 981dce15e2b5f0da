/* VZErrorDomain and the NSErrors the fake framework returns. */
#include "sim_vz.h"

NSString *const VZErrorDomain = @"VZErrorDomain";

NSError *sim_vz_error(NSInteger code, NSString *reason)
{
    NSDictionary *info = @{
        @"NSLocalizedFailure" : @"Invalid virtual machine configuration.",
        NSLocalizedDescriptionKey : reason,
        NSLocalizedFailureReasonErrorKey : reason,
    };
    return [NSError errorWithDomain:VZErrorDomain code:code userInfo:info];
}
