/* Objective-C side of the simulator: the base class every fake VZ object uses. */
#ifndef ARCBOX_VZ_SIM_OBJC_H
#define ARCBOX_VZ_SIM_OBJC_H

#include <Foundation/Foundation.h>
#include "sim.h"

/* Counts live instances: +1 in allocWithZone:, -1 in dealloc (sim_live_objects). */
@interface SimObject : NSObject
@end

long sim_live_objects(void);

/* Raise exactly like VZ's Vz::raise_invalid_argument_exception. */
#define SIM_RAISE(...) [NSException raise:NSInvalidArgumentException format:__VA_ARGS__]

/* The NSError VZ would return: domain VZErrorDomain, the given code and reason. */
NSError *sim_vz_error(NSInteger code, NSString *reason);

#endif
