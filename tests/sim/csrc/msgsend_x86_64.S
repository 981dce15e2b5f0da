/*
 * Apple's objc_msgSend contract on top of GCC's libobjc (x86_64 SysV).
 *
 * GCC's runtime has no objc_msgSend; it has objc_msg_lookup(receiver, sel) -> IMP,
 * which sim_msg_lookup (sim_availability.m) wraps to make members of a newer macOS
 * missing.
 * Each trampoline saves every argument register (rdi..r9, rax for varargs, xmm0..7),
 * looks the IMP up, restores the registers and tail-jumps into the IMP, so the
 * method sees exactly the arguments (register and stack) the caller passed.
 *
 *   objc_msgSend(self, _cmd, ...)                  lookup(rdi, rsi)
 *   objc_msgSend_stret(sret, self, _cmd, ...)      lookup(rsi, rdx)
 *   objc_msgSend_fpret                              alias of objc_msgSend
 *   objc_msgSendSuper(struct objc_super *, _cmd, ...)
 *       lookup_super(rdi, rsi), then rdi = super->receiver before the jump
 *
 * A nil receiver makes objc_msg_lookup return a method that returns 0, which is
 * Apple's "messages to nil return zero".
 */

#define SAVE_AREA 192

.macro SAVE_ARGS
    push %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    mov %rsp, %rbp
    .cfi_def_cfa_register %rbp
    sub $SAVE_AREA, %rsp
    mov %rdi, 0(%rsp)
    mov %rsi, 8(%rsp)
    mov %rdx, 16(%rsp)
    mov %rcx, 24(%rsp)
    mov %r8, 32(%rsp)
    mov %r9, 40(%rsp)
    mov %rax, 48(%rsp)
    movdqa %xmm0, 64(%rsp)
    movdqa %xmm1, 80(%rsp)
    movdqa %xmm2, 96(%rsp)
    movdqa %xmm3, 112(%rsp)
    movdqa %xmm4, 128(%rsp)
    movdqa %xmm5, 144(%rsp)
    movdqa %xmm6, 160(%rsp)
    movdqa %xmm7, 176(%rsp)
.endm

.macro RESTORE_ARGS_AND_JUMP
    mov %rax, %r11
    mov 0(%rsp), %rdi
    mov 8(%rsp), %rsi
    mov 16(%rsp), %rdx
    mov 24(%rsp), %rcx
    mov 32(%rsp), %r8
    mov 40(%rsp), %r9
    mov 48(%rsp), %rax
    movdqa 64(%rsp), %xmm0
    movdqa 80(%rsp), %xmm1
    movdqa 96(%rsp), %xmm2
    movdqa 112(%rsp), %xmm3
    movdqa 128(%rsp), %xmm4
    movdqa 144(%rsp), %xmm5
    movdqa 160(%rsp), %xmm6
    movdqa 176(%rsp), %xmm7
    leave
    .cfi_def_cfa %rsp, 8
    jmp *%r11
.endm

    .text

    .globl objc_msgSend
    .type objc_msgSend, @function
    .globl objc_msgSend_fpret
    .type objc_msgSend_fpret, @function
objc_msgSend:
objc_msgSend_fpret:
    .cfi_startproc
    SAVE_ARGS
    /* rdi = receiver, rsi = selector: already in place */
    call sim_msg_lookup
    RESTORE_ARGS_AND_JUMP
    .cfi_endproc
    .size objc_msgSend, . - objc_msgSend

    .globl objc_msgSend_stret
    .type objc_msgSend_stret, @function
objc_msgSend_stret:
    .cfi_startproc
    SAVE_ARGS
    mov %rsi, %rdi
    mov %rdx, %rsi
    call sim_msg_lookup
    RESTORE_ARGS_AND_JUMP
    .cfi_endproc
    .size objc_msgSend_stret, . - objc_msgSend_stret

    .globl objc_msgSendSuper
    .type objc_msgSendSuper, @function
objc_msgSendSuper:
    .cfi_startproc
    SAVE_ARGS
    call objc_msg_lookup_super@PLT
    /* The method gets the real receiver, not the objc_super pointer. */
    mov 0(%rsp), %rdi
    mov 0(%rdi), %rdi
    mov %rdi, 0(%rsp)
    RESTORE_ARGS_AND_JUMP
    .cfi_endproc
    .size objc_msgSendSuper, . - objc_msgSendSuper

    .section .note.GNU-stack, "", @progbits
