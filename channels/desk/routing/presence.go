package routing

import "strings"

// Presence is an agent's base presence status (msdyn_presence.msdyn_basepresencestatus).
// Custom presences map to one of these five; the engine only knows the base ones.
type Presence string

// The base presences.
const (
	Available Presence = "Available" // 192360000
	Busy      Presence = "Busy"      // 192360001
	BusyDND   Presence = "Busy-DND"  // 192360002
	Away      Presence = "Away"      // 192360003
	Offline   Presence = "Offline"   // 192360004
)

// basePresences lists the base presences in Omnichannel's option-value order.
var basePresences = [...]Presence{Available, Busy, BusyDND, Away, Offline}

// Code returns the Dataverse option value of msdyn_basepresencestatus, or 0 for an unknown
// presence.
func (p Presence) Code() int {
	for i, q := range basePresences {
		if p == q {
			return 192360000 + i
		}
	}
	return 0
}

// Valid reports whether p is a base presence.
func (p Presence) Valid() bool { return p.Code() != 0 }

// ParsePresence reads a presence ignoring case, spaces, hyphens and underscores, so that
// "busy-dnd", "Busy - DND" and "BusyDND" are the same; "Do not disturb" and "DND" are accepted
// for Busy-DND, "Appear away" for Away.
func ParsePresence(s string) (Presence, bool) {
	k := strings.ToLower(strings.NewReplacer(" ", "", "-", "", "_", "").Replace(s))
	switch k {
	case "available":
		return Available, true
	case "busy":
		return Busy, true
	case "busydnd", "dnd", "donotdisturb":
		return BusyDND, true
	case "away", "appearaway":
		return Away, true
	case "offline":
		return Offline, true
	}
	return "", false
}
