-- A person is linked to dispatch's staff member (dispatch 0002 made the staff table): the link must
-- name a real staff member; a staff record removed from dispatch leaves the person unlinked.
ALTER TABLE compliance_personnel
    ADD CONSTRAINT compliance_personnel_staff_fk FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE SET NULL;
