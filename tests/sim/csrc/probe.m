/*
 * SimProbe: a fixture class with one method per argument and return kind the crate
 * sends (object, NSUInteger, uint64_t, double, BOOL, NSError** out-parameter, nil,
 * a seventh argument on the stack). Not a VZ class.
 */
#include "sim_vz.h"

@interface SimProbe : SimObject
@end

@implementation SimProbe
- (id)echoObject:(id)object { return object; }
- (NSUInteger)addUnsigned:(NSUInteger)a to:(NSUInteger)b { return a + b; }
- (uint64_t)negateU64:(uint64_t)value { return ~value; }
- (double)scale:(double)value by:(double)factor { return value * factor; }
- (BOOL)isEven:(NSInteger)value { return value % 2 == 0; }
- (BOOL)isNil:(id)object { return object == nil; }
- (NSUInteger)sumA:(NSUInteger)a b:(NSUInteger)b c:(NSUInteger)c d:(NSUInteger)d
                 e:(NSUInteger)e f:(NSUInteger)f
{
    /* self, _cmd and a..d fill the six integer registers; e and f go on the stack. */
    return a + 10 * b + 100 * c + 1000 * d + 10000 * e + 100000 * f;
}
- (BOOL)failWithCode:(NSInteger)code error:(NSError **)error
{
    if (code == 0) return YES;
    if (error != NULL) *error = sim_vz_error(code, @"the probe was asked to fail");
    return NO;
}
- (BOOL)failSilently:(NSError **)error
{
    (void)error;
    return NO;
}
- (NSString *)describeInt:(int)value
{
    return [NSString stringWithFormat:@"int %d", value];
}
@end
