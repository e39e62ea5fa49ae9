#if defined key_obridge_oasis
!> OASIS3-MCT backend of oceanbridge (-Dkey_obridge_oasis): the same calls as
!! the MPI backend (obr_mpi.F90), on OASIS3-MCT's Fortran API (mod_oasis).
!!
!!   init:   oasis_init_comp(name) + oasis_get_localcomm, or reuse a component
!!           the host initialised itself (obr_init_from_oasis: NEMO key_oasis3);
!!   enddef: oasis_def_partition (box, offset = j0*nx + i0), one oasis_def_var
!!           per field (bundle of nlev levels), then oasis_enddef unless the
!!           host owns the component (then the host calls oasis_enddef);
!!   put/get: oasis_put/oasis_get at time (step - nit000 + 1)*dt seconds
!!           (obr_def_time: the state after step kt); OASIS decides from the
!!           namcouple whether to act;
!!   finalize: oasis_terminate unless the host owns the component.
!! Wire names follow bridge/transport/naming.py::oasis_name: UPPER(component_field).
!!
!! OASIS has no receive timeout: oasis_get waits inside MPI until the data
!! arrive, and a watchdog cannot return from inside MPI_Recv (only kill the
!! process). obr_set_timeout does not apply here; a dead peer ends the job
!! through mpirun (a rank exiting non-zero aborts all of them), a live but
!! silent peer hangs until the batch time limit.
module obr_backend
   use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
   use obr_core
   use obr_mpi_defs, only: fdef_t
   use mod_oasis
   use mpi
   implicit none
   private

   public :: backend_init, backend_init_host, backend_def_partition, backend_def_field, backend_enddef
   public :: backend_put, backend_get, backend_finalize

   integer, parameter :: WIRE_LEN = 80        !< ic_lvar of OASIS3-MCT 4.0: longest symbolic name

   type :: field_t
      type(fdef_t) :: def                      !< name, peer, direction, levels
      character(len=WIRE_LEN) :: wire = ''     !< OASIS symbolic name (as in the namcouple)
      integer :: var_id = -1                   !< OASIS variable id
      integer :: period = 0                    !< coupling period in seconds (0: not asked yet)
      integer :: last = -1                     !< last OASIS time at which it was exchanged (-1: never)
   end type field_t

   integer :: comp_id = -1                     !< OASIS component id
   logical :: host_owns = .false.              !< the host called oasis_init_comp: it ends and terminates
   integer :: mybox(6) = 0                     !< nx, ny, i0, j0, ni, nj
   logical :: has_box = .false., ended = .false.
   type(field_t), allocatable :: fields(:)
   integer :: nfields = 0

contains

   !> Start OASIS as component `name`; returns the component's communicator.
   subroutine backend_init(name, local_comm, kinfo)
      character(len=*), intent(in) :: name       !< this component's name (the namcouple's prefix)
      integer, intent(out) :: local_comm         !< communicator of this component's ranks
      integer, intent(out) :: kinfo              !< OBR_OK or an error code
      integer :: ierr
      core_name = name
      call oasis_init_comp(comp_id, name, ierr)
      if (ierr /= OASIS_Ok) then
         call set_error('oasis_init_comp(''' // name // ''') returned ' // core_itoa(ierr) // &
                        '; is a namcouple in the working folder and did every component start?', kinfo)
         return
      end if
      call oasis_get_localcomm(local_comm, ierr)
      call start(kinfo)
   end subroutine backend_init

   !> Reuse a component the host initialised with oasis_init_comp (NEMO with key_oasis3).
   subroutine backend_init_host(name, host_comp_id, host_comm, kinfo)
      character(len=*), intent(in) :: name       !< the name the host gave oasis_init_comp
      integer, intent(in) :: host_comp_id        !< the id oasis_init_comp returned to the host
      integer, intent(in) :: host_comm           !< the host's local communicator
      integer, intent(out) :: kinfo              !< OBR_OK or OBR_ERR_USAGE
      integer :: comm, ierr, verdict
      core_name = name
      comp_id = host_comp_id
      host_owns = .true.
      call start(kinfo)
      call oasis_get_localcomm(comm, ierr)
      call MPI_Comm_compare(host_comm, comm, verdict, ierr)
      if (ierr /= MPI_SUCCESS .or. (verdict /= MPI_IDENT .and. verdict /= MPI_CONGRUENT)) then
         kinfo = OBR_ERR_USAGE
         core_last_error = 'obr_init_from_oasis('''//name//'''): local_comm is not the communicator '// &
                           'oasis_get_localcomm returns; did the host call oasis_init_comp first?'
      end if
   end subroutine backend_init_host

   subroutine start(kinfo)
      integer, intent(out) :: kinfo              !< OBR_OK
      integer :: ierr
      call MPI_Comm_rank(MPI_COMM_WORLD, core_world_rank, ierr)
      if (.not. allocated(fields)) allocate (fields(8))
      kinfo = OBR_OK
   end subroutine start

   subroutine backend_def_partition(box, gaps, kinfo)
      integer, intent(in) :: box(6)              !< nx, ny, i0, j0, ni, nj (0-based offsets)
      logical, intent(in) :: gaps                !< ranks may cover only part of the grid: OASIS is told the global
                                                 !! size (ig_size) on every partition anyway, as NEMO's cpl_oasis3
      integer, intent(out) :: kinfo              !< OBR_OK
      mybox = box
      has_box = .true.
      kinfo = OBR_OK
   end subroutine backend_def_partition

   subroutine backend_def_field(def, id, kinfo)
      type(fdef_t), intent(in) :: def            !< the field's definition
      integer, intent(out) :: id                 !< its handle
      integer, intent(out) :: kinfo              !< OBR_OK or OBR_ERR_USAGE
      type(field_t), allocatable :: grown(:)
      id = -1
      kinfo = OBR_ERR_USAGE
      if (.not. allocated(fields) .or. ended) then
         core_last_error = 'field '''//trim(def%name)//''': obr_def_field before obr_init or after obr_enddef'
         return
      end if
      if (len_trim(core_name) + len_trim(def%peer) + len_trim(def%name) + 2 > WIRE_LEN) then
         core_last_error = 'field '''//trim(def%name)//''': its OASIS name '''// &
                           trim(wire_name(core_name, def%peer, def%name))//'...'' is longer than the '// &
                           core_itoa(WIRE_LEN)//' characters OASIS3-MCT accepts: shorten the component or field name'
         return
      end if
      if (nfields == size(fields)) then
         allocate (grown(2*nfields))
         grown(:nfields) = fields(:nfields)
         call move_alloc(grown, fields)
      end if
      nfields = nfields + 1
      fields(nfields)%def = def
      fields(nfields)%wire = wire_name(core_name, def%peer, def%name)
      id = nfields
      kinfo = OBR_OK
   end subroutine backend_def_field

   !> The OASIS name of a field: UPPER(component[_peer]_field), as bridge.transport.naming.oasis_name.
   pure function wire_name(comp, peer, field) result(wire)
      character(len=*), intent(in) :: comp, peer, field  !< component, peer ('' on the ocean), field
      character(len=WIRE_LEN) :: wire
      integer :: k
      if (len_trim(peer) > 0) then
         wire = trim(comp)//'_'//trim(peer)//'_'//trim(field)
      else
         wire = trim(comp)//'_'//trim(field)
      end if
      do k = 1, len_trim(wire)
         if (wire(k:k) >= 'a' .and. wire(k:k) <= 'z') wire(k:k) = achar(iachar(wire(k:k)) - 32)
      end do
   end function wire_name

   !> Declare the partition and the fields to OASIS, then end its definitions (unless the host owns them).
   subroutine backend_enddef(kinfo, msg)
      integer, intent(out) :: kinfo              !< OBR_OK or OBR_ERR_DEF / OBR_ERR_USAGE
      character(len=*), intent(out) :: msg       !< the reason when kinfo /= OBR_OK
      integer :: part_id, ierr, k, dir
      msg = ''
      kinfo = OBR_ERR_USAGE
      if (.not. has_box) then
         msg = 'end of definitions before obr_def_partition'
      else if (core_dt <= 0) then
         msg = 'the OASIS backend needs the model time: call obr_def_time(nit000, dt) before obr_enddef'
      else if (ended) then
         msg = 'obr_enddef called twice'
      end if
      if (msg /= '') return
      call oasis_def_partition(part_id, [2, mybox(4)*mybox(1) + mybox(3), mybox(5), mybox(6), mybox(1)], ierr, &
                               mybox(1)*mybox(2))
      if (ierr /= OASIS_Ok) then
         kinfo = OBR_ERR_DEF
         msg = 'oasis_def_partition returned '//core_itoa(ierr)//' for the box '//box_text()
         return
      end if
      do k = 1, nfields
         dir = merge(OASIS_In, OASIS_Out, fields(k)%def%dir == OBR_IN)
         call oasis_def_var(fields(k)%var_id, trim(fields(k)%wire), part_id, [1, fields(k)%def%nlev], dir, &
                            [1, mybox(5)*mybox(6)], OASIS_Real, ierr)
         if (fields(k)%var_id < 0 .or. ierr /= OASIS_Ok) then
            kinfo = OBR_ERR_DEF
            msg = 'field '''//trim(fields(k)%def%name)//''': its OASIS name '''//trim(fields(k)%wire)// &
                  ''' is not in the namcouple (oasis_def_var gave id '//core_itoa(fields(k)%var_id)// &
                  ', info '//core_itoa(ierr)//'); re-run ''oceanbridge preprod CONFIG'' or add the entry '// &
                  'to the namcouple in the working folder'
            return
         end if
      end do
      if (.not. host_owns) then
         call oasis_enddef(ierr)
         if (ierr /= OASIS_Ok) then
            kinfo = OBR_ERR_DEF
            msg = 'oasis_enddef returned '//core_itoa(ierr)
            return
         end if
      end if
      ended = .true.
      kinfo = OBR_OK
   end subroutine backend_enddef

   function box_text() result(s)
      character(len=:), allocatable :: s
      s = 'i0='//core_itoa(mybox(3))//' j0='//core_itoa(mybox(4))//' ni='//core_itoa(mybox(5))//' nj='// &
          core_itoa(mybox(6))//' of '//core_itoa(mybox(1))//'x'//core_itoa(mybox(2))
   end function box_text

   !> Hand this rank's part of a field to OASIS for a step; OASIS sends it when the namcouple says so.
   subroutine backend_put(id, step, kinfo, msg, f2, f3)
      integer, intent(in) :: id                        !< field handle
      integer, intent(in) :: step                      !< host model step
      integer, intent(out) :: kinfo                    !< OBR_SENT, OBR_OK (nothing due) or an error code
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(in), optional :: f2(:, :)       !< a 2-D field (ni, nj)
      real(dp), intent(in), optional :: f3(:, :, :)    !< a 3-D field (ni, nj, nlev)
      integer :: tsec, info, nbad
      call check_call(id, OBR_OUT, 'put', step, tsec, kinfo, msg, f2, f3); if (kinfo < 0) return
      nbad = 0
      if (core_nan_policy /= OBR_NAN_OFF) then   ! no scan when the policy is off, as in the MPI backend
         if (present(f3)) nbad = count(.not. ieee_is_finite(f3))
         if (present(f2)) nbad = count(.not. ieee_is_finite(f2))
      end if
      call core_nan_verdict(fields(id)%def%name, step, nbad, kinfo, msg); if (kinfo < 0) return
      if (present(f2)) then
         call oasis_put(fields(id)%var_id, tsec, f2, info)
      else if (fields(id)%def%nlev == 1) then
         call oasis_put(fields(id)%var_id, tsec, f3(:, :, 1), info)   ! OASIS takes bundles only for nlev > 1
      else
         call oasis_put(fields(id)%var_id, tsec, f3, info)
      end if
      call map_info(id, 'oasis_put', step, tsec, info, kinfo, msg)
   end subroutine backend_put

   !> Ask OASIS for this rank's part of a field at a step: waits (no timeout) at coupling times.
   subroutine backend_get(id, step, kinfo, msg, f2, f3)
      integer, intent(in) :: id                        !< field handle
      integer, intent(in) :: step                      !< host model step
      integer, intent(out) :: kinfo                    !< OBR_RECVD, OBR_OK (nothing due) or an error code
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(inout), optional :: f2(:, :)    !< a 2-D field (ni, nj)
      real(dp), intent(inout), optional :: f3(:, :, :) !< a 3-D field (ni, nj, nlev)
      integer :: tsec, info
      call check_call(id, OBR_IN, 'get', step, tsec, kinfo, msg, f2, f3); if (kinfo < 0) return
      if (present(f2)) then
         call oasis_get(fields(id)%var_id, tsec, f2, info)
      else if (fields(id)%def%nlev == 1) then
         call oasis_get(fields(id)%var_id, tsec, f3(:, :, 1), info)
      else
         call oasis_get(fields(id)%var_id, tsec, f3, info)
      end if
      call map_info(id, 'oasis_get', step, tsec, info, kinfo, msg)
   end subroutine backend_get

   !> OASIS's info code as an oceanbridge status: sent, received, nothing due, or an error.
   subroutine map_info(id, what, step, tsec, info, kinfo, msg)
      integer, intent(in) :: id, step, tsec, info      !< field, host step, OASIS time, OASIS info
      character(len=*), intent(in) :: what             !< 'oasis_put' or 'oasis_get'
      integer, intent(out) :: kinfo                    !< OBR_SENT, OBR_RECVD, OBR_OK or OBR_ERR_MPI
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      msg = ''
      select case (info)
      case (OASIS_Sent, OASIS_ToRest, OASIS_Output, OASIS_SentOut, OASIS_ToRestOut)
         kinfo = OBR_SENT
      case (OASIS_Recvd, OASIS_FromRest, OASIS_Input, OASIS_RecvOut, OASIS_FromRestOut)
         kinfo = OBR_RECVD
      case (OASIS_Ok, OASIS_LocTrans, OASIS_Waitgroup)
         kinfo = OBR_OK
      case default
         kinfo = OBR_ERR_MPI
         msg = 'field '''//trim(fields(id)%def%name)//''' (OASIS '''//trim(fields(id)%wire)//'''): '//what// &
               ' at step '//core_itoa(step)//' (t = '//core_itoa(tsec)//' s) returned info '//core_itoa(info)
      end select
      if (kinfo == OBR_SENT .or. kinfo == OBR_RECVD) fields(id)%last = tsec
   end subroutine map_info

   !> Leave OASIS (oasis_terminate, which ends MPI if OASIS started it) unless the host owns the component.
   subroutine backend_finalize(kinfo, msg)
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_MPI
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      integer :: ierr
      kinfo = OBR_OK
      msg = ''
      ended = .false.
      call core_leave_cores()
      if (host_owns) return
      call oasis_terminate(ierr)
      if (ierr /= OASIS_Ok) then
         kinfo = OBR_ERR_MPI
         msg = 'oasis_terminate returned '//core_itoa(ierr)
      end if
   end subroutine backend_finalize

   !> Reject calls before enddef, on unknown ids, in the wrong direction or with the wrong shape;
   !! return the OASIS time of the step.
   subroutine check_call(id, dir, what, step, tsec, kinfo, msg, f2, f3)
      integer, intent(in) :: id, dir, step             !< field handle, direction the call needs, host step
      character(len=*), intent(in) :: what             !< 'put' or 'get'
      integer, intent(out) :: tsec                     !< OASIS time in seconds
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_USAGE
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(in), optional :: f2(:, :)       !< a 2-D field
      real(dp), intent(in), optional :: f3(:, :, :)    !< a 3-D field
      tsec = 0
      if (.not. ended) then
         kinfo = OBR_ERR_USAGE
         msg = what//' at step '//core_itoa(step)//' before obr_enddef'
      else if (id < 1 .or. id > nfields) then
         kinfo = OBR_ERR_USAGE
         msg = what//' at step '//core_itoa(step)//': unknown field id '//core_itoa(id)// &
               ' (ids are 1..'//core_itoa(nfields)//')'
      else
         call core_check_field(fields(id)%def%name, fields(id)%def%dir, fields(id)%def%nlev, mybox(5:6), dir, &
                               what, kinfo, msg, f2, f3)
         if (kinfo == OBR_OK) call core_oasis_time(fields(id)%def%name, step, tsec, kinfo, msg)
         if (kinfo == OBR_OK) call check_schedule(id, step, tsec, kinfo, msg)
      end if
   end subroutine check_call

   !> OASIS aborts ('coupling skipped at earlier time, potential deadlock') when a field of the
   !! component acts at t while another one missed a coupling time before t. Check it first, with
   !! the same rule, and say which field and time were skipped and why (map_info notes each exchange).
   subroutine check_schedule(id, step, tsec, kinfo, msg)
      integer, intent(in) :: id, step, tsec            !< field handle, host step, its OASIS time
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_USAGE
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      integer :: k, ierr, freq(1)
      kinfo = OBR_OK
      msg = ''
      do k = 1, nfields                                ! periods are known after oasis_enddef: ask once
         if (fields(k)%period > 0) cycle
         call oasis_get_freqs(fields(k)%var_id, merge(OASIS_In, OASIS_Out, fields(k)%def%dir == OBR_IN), 1, &
                              freq, ierr)
         fields(k)%period = merge(freq(1), huge(0), ierr == OASIS_Ok .and. freq(1) > 0)
      end do
      if (mod(tsec, fields(id)%period) /= 0) return     ! OASIS does nothing at this time
      do k = 1, nfields
         if (k == id) cycle
         if ((fields(k)%last >= 0 .and. tsec > fields(k)%last + fields(k)%period) .or. &
             (fields(k)%last < 0 .and. fields(id)%last >= 0 .and. tsec >= fields(k)%period)) then
            kinfo = OBR_ERR_USAGE
            msg = 'field '''//trim(fields(k)%def%name)//''' (OASIS '''//trim(fields(k)%wire)//''', period '// &
                  core_itoa(fields(k)%period)//' s) missed a coupling time before t = '//core_itoa(tsec)// &
                  ' s, where field '''//trim(fields(id)%def%name)//''' is exchanged at step '//core_itoa(step)// &
                  ' (its last exchange: '//trim(last_text(fields(k)%last))//'). OASIS needs every field '// &
                  'put/got at every coupling time from t = 0 '// &
                  '(the initial state, step nit000 - 1) on, and aborts otherwise: a field used only later (an '// &
                  'emulated state) is also exchanged at step nit000 - 1 (see obr_needs_initial_exchange)'
            return
         end if
      end do
   end subroutine check_schedule

   !> 'never' or 't = N s'.
   function last_text(t) result(s)
      integer, intent(in) :: t                         !< last exchange time, -1 for never
      character(len=32) :: s
      s = 'never'
      if (t >= 0) s = 't = '//core_itoa(t)//' s'
   end function last_text

   subroutine set_error(text, kinfo)
      character(len=*), intent(in) :: text             !< the message
      integer, intent(out) :: kinfo                    !< set to OBR_ERR_MPI
      core_last_error = text
      kinfo = OBR_ERR_MPI
   end subroutine set_error

end module obr_backend
#endif
