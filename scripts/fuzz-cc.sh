#!/bin/sh
# The C compiler for the fuzz build (scripts/fuzz.sh sets it as CC for the
# target): cc, without `-static` when AddressSanitizer is on. isal-sys
# configures ISA-L with LDFLAGS=-static, which gcc refuses together with
# -fsanitize=address ("cannot specify -static with -fsanitize=address"), so
# configure's compiler check failed and the fuzz build with it. The library
# is built as a static archive either way; -static only affected the test
# programs configure links.
case " $* " in
*" -fsanitize="*)
    for a; do
        shift
        [ "$a" = -static ] || set -- "$@" "$a"
    done
    ;;
esac
exec "${FUZZ_REAL_CC:-cc}" "$@"
