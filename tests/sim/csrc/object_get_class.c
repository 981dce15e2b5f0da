/*
 * GCC's <objc/runtime.h> makes object_getClass a static inline, so libobjc does not
 * export it; Apple's libobjc does. The first word of a GCC object (class_pointer) is its
 * class, and the first word of a class is its metaclass. Plain C, away from the header
 * that declares the inline.
 */
#include <stddef.h>

void *object_getClass(void *object)
{
    return object != NULL ? *(void **)object : NULL;
}
