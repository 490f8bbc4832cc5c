package iam

import (
	"context"
	"slices"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// User is an IAM user's record. Its groups are kept here, so that the
// policies that apply to a caller are read from its user and those groups.
type User struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Path     string            `json:"path"`
	Created  time.Time         `json:"created"`
	Tags     []Tag             `json:"tags,omitempty"`
	Inline   map[string]string `json:"inline,omitempty"`
	Attached []string          `json:"attached,omitempty"`
	Groups   []string          `json:"groups,omitempty"` // names
}

// Group is an IAM group's record.
type Group struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Path     string            `json:"path"`
	Created  time.Time         `json:"created"`
	Inline   map[string]string `json:"inline,omitempty"`
	Attached []string          `json:"attached,omitempty"`
}

func userKey(name string) string  { return "iam.user." + store.Token(strings.ToLower(name)) }
func groupKey(name string) string { return "iam.group." + store.Token(strings.ToLower(name)) }

func (s *Service) userArn(u *User) string {
	return "arn:aws:iam::" + s.account + ":user" + u.Path + u.Name
}
func (s *Service) groupArn(g *Group) string {
	return "arn:aws:iam::" + s.account + ":group" + g.Path + g.Name
}

func noUser(name string) *awsapi.Error {
	return errNoSuchEntity("The user with name %s cannot be found.", name)
}

func noGroup(name string) *awsapi.Error {
	return errNoSuchEntity("The group with name %s cannot be found.", name)
}

func (s *Service) user(name string) (User, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.users[userKey(name)]
	if st == nil {
		return User{}, 0, noUser(name)
	}
	return st.user, st.rev, nil
}

func (s *Service) group(name string) (Group, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.groups[groupKey(name)]
	if st == nil {
		return Group{}, 0, noGroup(name)
	}
	return st.group, st.rev, nil
}

type userXML struct {
	Path       string   `xml:"Path"`
	UserName   string   `xml:"UserName"`
	UserId     string   `xml:"UserId"`
	Arn        string   `xml:"Arn"`
	CreateDate string   `xml:"CreateDate"`
	Tags       *tagsXML `xml:"Tags,omitempty"`
}

func (s *Service) userXML(u *User, withTags bool) userXML {
	out := userXML{Path: u.Path, UserName: u.Name, UserId: u.ID, Arn: s.userArn(u), CreateDate: isoTime(u.Created)}
	if withTags {
		out.Tags = tagList(u.Tags)
	}
	return out
}

type groupXML struct {
	Path       string `xml:"Path"`
	GroupName  string `xml:"GroupName"`
	GroupId    string `xml:"GroupId"`
	Arn        string `xml:"Arn"`
	CreateDate string `xml:"CreateDate"`
}

func (s *Service) groupXML(g *Group) groupXML {
	return groupXML{Path: g.Path, GroupName: g.Name, GroupId: g.ID, Arn: s.groupArn(g), CreateDate: isoTime(g.Created)}
}

// newEntity validates the name and path of a user or group to create.
func newEntity(k kind, p awsapi.Params) (name, path *string, err error) {
	var c checker
	name = k.entityParam(&c, p)
	path = p.Str("Path")
	c.str(path, "path", false, 1, 512, rolePathRE, `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`)
	return name, path, c.err()
}

func (s *Service) createUser(ctx context.Context, p awsapi.Params) (any, error) {
	_, user, _ := s.kinds()
	name, path, err := newEntity(user, p)
	if err != nil {
		return nil, err
	}
	tags, err := readTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	var c checker
	c.tags(tags)
	if err := c.err(); err != nil {
		return nil, err
	}
	if _, _, err := s.user(*name); err == nil {
		return nil, errExists("User with name %s already exists.", *name)
	}
	u := User{Name: *name, ID: newID("AIDA"), Path: "/", Created: time.Now().UTC(), Tags: tags}
	if path != nil {
		u.Path = *path
	}
	if err := s.save(ctx, userKey(u.Name), 0, &u); err != nil {
		if aerr, ok := err.(*awsapi.Error); ok && aerr.Code == "ConcurrentModification" {
			return nil, errExists("User with name %s already exists.", *name)
		}
		return nil, err
	}
	return struct {
		User userXML `xml:"User"`
	}{s.userXML(&u, true)}, nil
}

// callerUser returns the user a request names, or else the caller's.
func (s *Service) callerUser(ctx context.Context, p awsapi.Params) (User, uint64, error) {
	if p.Str("UserName") == nil {
		id, _ := awsapi.IdentityFrom(ctx)
		name, ok := strings.CutPrefix(id.Principal, "arn:aws:iam::"+s.account+":user/")
		if !ok {
			return User{}, 0, &awsapi.Error{Code: "ValidationError", Message: "Must specify userName when calling with non-User credentials"}
		}
		return s.user(name[strings.LastIndexByte(name, '/')+1:])
	}
	var c checker
	_, user, _ := s.kinds()
	name := user.entityParam(&c, p)
	if err := c.err(); err != nil {
		return User{}, 0, err
	}
	return s.user(*name)
}

func (s *Service) getUser(ctx context.Context, p awsapi.Params) (any, error) {
	if id, _ := awsapi.IdentityFrom(ctx); p.Str("UserName") == nil && id.Principal == "" {
		// The account's root user.
		return struct {
			User userXML `xml:"User"`
		}{userXML{UserId: s.account, Arn: "arn:aws:iam::" + s.account + ":root", CreateDate: isoTime(time.Unix(0, 0))}}, nil
	}
	u, _, err := s.callerUser(ctx, p)
	if err != nil {
		return nil, err
	}
	return struct {
		User userXML `xml:"User"`
	}{s.userXML(&u, true)}, nil
}

func (s *Service) listUsers(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	prefix := p.Str("PathPrefix")
	s.mu.RLock()
	byName := map[string]User{}
	for _, st := range s.users {
		if prefix == nil || strings.HasPrefix(st.user.Path, *prefix) {
			byName[st.user.Name] = st.user
		}
	}
	s.mu.RUnlock()
	return s.userList(byName, p.Str("Marker"), max, nil), nil
}

func (s *Service) deleteUser(ctx context.Context, p awsapi.Params) (any, error) {
	u, rev, err := s.callerUser(ctx, p)
	if err != nil {
		return nil, err
	}
	if len(s.keysOf(u.Name)) > 0 {
		return nil, errConflict("Cannot delete entity, must delete access keys first.")
	}
	if err := policiesLeft(&u); err != nil {
		return nil, err
	}
	if len(u.Groups) > 0 {
		// AWS's only recorded answer for a user in a group is the
		// group's wording.
		return nil, errConflict("Cannot delete entity, must remove users from group first.")
	}
	return nil, s.remove(ctx, userKey(u.Name), rev)
}

func (s *Service) tagUser(ctx context.Context, p awsapi.Params) (any, error) {
	tags, err := readTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	var c checker
	c.tags(tags)
	if err := c.err(); err != nil {
		return nil, err
	}
	_, user, _ := s.kinds()
	return nil, s.changeUser(ctx, user, p, func(u *User) error {
		u.Tags = mergeTags(u.Tags, tags)
		if len(u.Tags) > 50 {
			return errLimit("The number of tags has reached the maximum limit.")
		}
		return nil
	})
}

func (s *Service) untagUser(ctx context.Context, p awsapi.Params) (any, error) {
	keys := p.List("TagKeys")
	_, user, _ := s.kinds()
	return nil, s.changeUser(ctx, user, p, func(u *User) error {
		u.Tags = slices.DeleteFunc(u.Tags, func(t Tag) bool { return slices.Contains(keys, t.Key) })
		return nil
	})
}

func (s *Service) listUserTags(ctx context.Context, p awsapi.Params) (any, error) {
	u, _, err := s.callerUser(ctx, p)
	if err != nil {
		return nil, err
	}
	return struct {
		Tags tagsXML `xml:"Tags"`
		listInfo
	}{Tags: tagsXML{Members: u.Tags}}, nil
}

// changeUser applies fn to the user the request's UserName names.
func (s *Service) changeUser(ctx context.Context, user kind, p awsapi.Params, fn func(*User) error) error {
	var c checker
	name := user.entityParam(&c, p)
	if err := c.err(); err != nil {
		return err
	}
	return user.change(ctx, *name, func(e entity) error { return fn(e.(*User)) })
}

func (s *Service) createGroup(ctx context.Context, p awsapi.Params) (any, error) {
	_, _, group := s.kinds()
	name, path, err := newEntity(group, p)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.group(*name); err == nil {
		return nil, errExists("Group with name %s already exists.", *name)
	}
	g := Group{Name: *name, ID: newID("AGPA"), Path: "/", Created: time.Now().UTC()}
	if path != nil {
		g.Path = *path
	}
	if err := s.save(ctx, groupKey(g.Name), 0, &g); err != nil {
		if aerr, ok := err.(*awsapi.Error); ok && aerr.Code == "ConcurrentModification" {
			return nil, errExists("Group with name %s already exists.", *name)
		}
		return nil, err
	}
	return struct {
		Group groupXML `xml:"Group"`
	}{s.groupXML(&g)}, nil
}

// groupParam returns the group a request's GroupName names.
func (s *Service) groupParam(p awsapi.Params) (Group, uint64, error) {
	var c checker
	_, _, group := s.kinds()
	name := group.entityParam(&c, p)
	if err := c.err(); err != nil {
		return Group{}, 0, err
	}
	return s.group(*name)
}

// members returns the users of a group, sorted by name.
func (s *Service) members(group string) []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []User
	for _, st := range s.users {
		if slices.ContainsFunc(st.user.Groups, func(g string) bool { return strings.EqualFold(g, group) }) {
			out = append(out, st.user)
		}
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *Service) getGroup(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	g, _, err := s.groupParam(p)
	if err != nil {
		return nil, err
	}
	byName := map[string]User{}
	for _, u := range s.members(g.Name) {
		byName[u.Name] = u
	}
	gx := s.groupXML(&g)
	return s.userList(byName, p.Str("Marker"), max, &gx), nil
}

func (s *Service) listGroups(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	prefix := p.Str("PathPrefix")
	s.mu.RLock()
	byName := map[string]Group{}
	for _, st := range s.groups {
		if prefix == nil || strings.HasPrefix(st.group.Path, *prefix) {
			byName[st.group.Name] = st.group
		}
	}
	s.mu.RUnlock()
	return s.groupList(byName, p.Str("Marker"), max), nil
}

// userList is the answer of ListUsers, and of GetGroup with its group.
func (s *Service) userList(byName map[string]User, marker *string, max int, group *groupXML) any {
	list, info := pageOf(byName, marker, max, func(_ string, u *User) userXML { return s.userXML(u, false) })
	return struct {
		Group *groupXML        `xml:"Group,omitempty"`
		Users members[userXML] `xml:"Users"`
		listInfo
	}{group, list, info}
}

// groupList is the answer of ListGroups and ListGroupsForUser.
func (s *Service) groupList(byName map[string]Group, marker *string, max int) any {
	list, info := pageOf(byName, marker, max, func(_ string, g *Group) groupXML { return s.groupXML(g) })
	return struct {
		Groups members[groupXML] `xml:"Groups"`
		listInfo
	}{list, info}
}

func (s *Service) deleteGroup(ctx context.Context, p awsapi.Params) (any, error) {
	g, rev, err := s.groupParam(p)
	if err != nil {
		return nil, err
	}
	if len(s.members(g.Name)) > 0 {
		return nil, errConflict("Cannot delete entity, must remove users from group first.")
	}
	if err := policiesLeft(&g); err != nil {
		return nil, err
	}
	return nil, s.remove(ctx, groupKey(g.Name), rev)
}

func (s *Service) addUserToGroup(ctx context.Context, p awsapi.Params) (any, error) {
	g, _, err := s.groupParam(p)
	if err != nil {
		return nil, err
	}
	_, user, _ := s.kinds()
	return nil, s.changeUser(ctx, user, p, func(u *User) error {
		if !slices.ContainsFunc(u.Groups, func(n string) bool { return strings.EqualFold(n, g.Name) }) {
			if len(u.Groups) >= 10 {
				return errLimit("Cannot exceed quota for GroupsPerUser: 10")
			}
			u.Groups = append(u.Groups, g.Name)
		}
		return nil
	})
}

func (s *Service) removeUserFromGroup(ctx context.Context, p awsapi.Params) (any, error) {
	g, _, err := s.groupParam(p)
	if err != nil {
		return nil, err
	}
	_, user, _ := s.kinds()
	return nil, s.changeUser(ctx, user, p, func(u *User) error {
		i := slices.IndexFunc(u.Groups, func(n string) bool { return strings.EqualFold(n, g.Name) })
		if i < 0 {
			return errNoSuchEntity("The user with name %s cannot be found in group %s.", u.Name, g.Name)
		}
		u.Groups = slices.Delete(u.Groups, i, i+1)
		return nil
	})
}

func (s *Service) listGroupsForUser(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	_, user, _ := s.kinds()
	name := user.entityParam(&c, p)
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	u, _, err := s.user(*name)
	if err != nil {
		return nil, err
	}
	byName := map[string]Group{}
	for _, n := range u.Groups {
		if g, _, err := s.group(n); err == nil {
			byName[g.Name] = g
		}
	}
	return s.groupList(byName, p.Str("Marker"), max), nil
}
