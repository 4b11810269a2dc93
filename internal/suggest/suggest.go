// Package suggest finds the word a person most likely meant: the "did you mean" of the
// command line (an unknown subcommand) and of the configuration file (an unknown key).
package suggest

import "strings"

// Closest returns the candidate nearest to word by edit distance (a swap of two neighbouring
// letters counts as one edit, the commonest typo: "log_levle"), or "" when none is close
// enough to be worth saying: at most a third of the word's letters, and at least one.
func Closest(word string, candidates []string) string {
	limit := max(1, len([]rune(word))/3)
	best, bestDist := "", limit+1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		if d := distance(lw, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b: insertions, deletions,
// substitutions and transpositions of adjacent runes, each one edit.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// three rows: two back (for transpositions), the previous and the current
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
