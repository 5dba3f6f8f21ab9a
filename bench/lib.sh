# Shared helpers of the benchmark scripts (sourced; they set TMP first).

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }
warm() { cat "$@" >/dev/null; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
maxcol() { awk -v c="$2" 'NR == 1 || $c > m { m = $c } END { print m }' "$TMP/$1.times"; }
mincol() { awk -v c="$2" 'NR == 1 || $c < m { m = $c } END { print m }' "$TMP/$1.times"; }

# Bytes for a size such as 256M or 1G (binary units, as gen-fixtures reads them).
size_bytes() {
    local s=$1 n unit
    n=${s%%[!0-9]*}
    unit=${s#"$n"}
    case ${unit^^} in
        "" | B) echo "$n" ;;
        K | KIB) echo $((n << 10)) ;;
        M | MIB) echo $((n << 20)) ;;
        G | GIB) echo $((n << 30)) ;;
        *) die "bad size $s" ;;
    esac
}

# run_timed LABEL CMD...: runs CMD once under GNU time, stdout to $TMP/LABEL.out;
# appends "wall_s rss_kib user_s sys_s" to $TMP/LABEL.times. Wall time comes from
# bash's microsecond clock (GNU time's %e has only 10 ms resolution).
run_timed() {
    local label=$1
    shift
    local t0 t1 tf=$TMP/time.txt
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f '%M %U %S' -o "$tf" "$@" >"$TMP/$label.out" 2>"$TMP/$label.err"; then
        cat "$TMP/$label.err" >&2
        die "$label failed: $*"
    fi
    t1=$EPOCHREALTIME
    local rss user sys
    read -r rss user sys < <(tail -n 1 "$tf")
    awk -v a="$t0" -v b="$t1" -v r="$rss" -v u="$user" -v s="$sys" \
        'BEGIN { printf "%.4f %d %.2f %.2f\n", b - a, r, u, s }' >>"$TMP/$label.times"
}

# median LABEL COLUMN: the median of one column of $TMP/LABEL.times.
median() {
    awk -v c="$2" '{ print $c }' "$TMP/$1.times" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
