# What the scripts that time two builds of apprentice share (bench/lm_run_ab.sh,
# bench/bert_speed_ab.sh): sourced by them, not run.
#
#   ab_machine                          the processor's name and its number of cores
#   ab_load                             the load averages over 1, 5 and 15 minutes
#   ab_rounds ROUNDS BEFORE AFTER RUN   for each round, `RUN SIDE BINARY ROUND` with SIDE
#                                       `before` (binary BEFORE) and `after` (binary AFTER)

ab_machine() {
    echo "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) cores"
}

ab_load() {
    cut -d ' ' -f 1-3 /proc/loadavg
}

ab_rounds() {
    local rounds="$1" before="$2" after="$3" run="$4" round side binary order
    for round in $(seq 1 "$rounds"); do
        # Odd rounds run the older build first, even rounds the newer one, so that whatever
        # favours one place in a pair falls on both builds alike.
        order="before after"
        [ $((round % 2)) -eq 0 ] && order="after before"
        for side in $order; do
            binary="$before"
            [ "$side" = after ] && binary="$after"
            echo "round $round of $rounds: $side"
            "$run" "$side" "$binary" "$round"
        done
    done
}
