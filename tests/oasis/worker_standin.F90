!> STAND-IN for the Python worker on OASIS3-MCT (pyoasis 5 is not available
!! here): a Fortran program that does what bridge/transport/oasis.py does with
!! the field table of bridge/fortran/examples/exchange_ocean.F90. Component
!! 'worker', peer 'ocean', so its OASIS names are WORKER_OCEAN_<FIELD>
!! (bridge.transport.naming.oasis_name). Each rank owns a box of a PX x PY split
!! (chosen unlike the ocean's, so MCT must reroute); at every step (t = step
!! seconds) it gets a2, b3 and checks every value, then puts c2, d3.
!! Usage: worker_standin NX NY NLEV PX PY NSTEPS [OPX OPY K...]
!! With OPX OPY K...: the ocean (OPX x OPY layout) removed its subdomains K (0-based, i fastest) and declared the
!! gaps; the values expected there are 0 (the bridge's GAP_FILL), and the stand-in counts what OASIS gave there.
program worker_standin
   use mod_oasis
   use mpi
   use standin_fields
   implicit none
   integer :: nx, ny, nlev, px, py, nsteps, comp_id, comm, rank, ierr, part_id
   integer :: i0, j0, ni, nj, step, info, nbad, nrecv, k
   integer :: var(4), args(6), nargs, opx, opy, oi0, oj0, oni, onj, ngap
   integer, allocatable :: removed(:)
   logical, allocatable :: land(:, :)
   character(len=2), parameter :: fname(4) = ['A2', 'B3', 'C2', 'D3']
   real(dp), allocatable :: a(:, :, :), b(:, :, :)

   nargs = command_argument_count()
   args = int_args(6)
   nx = args(1); ny = args(2); nlev = args(3); px = args(4); py = args(5); nsteps = args(6)
   removed = [integer ::]
   if (nargs > 6) then
      removed = int_args(nargs)
      opx = removed(7); opy = removed(8)
      removed = removed(9:)
   end if
   if (nlev < 2) stop 'worker stand-in: NLEV must be >= 2 (b3 and d3 travel as OASIS bundles)'
   call oasis_init_comp(comp_id, 'worker', ierr)
   call oasis_get_localcomm(comm, ierr)
   call MPI_Comm_rank(comm, rank, ierr)
   call split(nx, px, mod(rank, px), i0, ni)
   call split(ny, py, rank/px, j0, nj)
   call oasis_def_partition(part_id, [2, j0*nx + i0, ni, nj, nx], ierr, nx*ny)
   do k = 1, 4
      call oasis_def_var(var(k), 'WORKER_OCEAN_'//fname(k), part_id, [1, merge(nlev, 1, mod(k, 2) == 0)], &
                         merge(OASIS_In, OASIS_Out, k <= 2), [1, ni*nj], OASIS_Real, ierr)
      if (var(k) < 0) print '(a)', 'worker stand-in: WORKER_OCEAN_'//fname(k)//' is not in the namcouple'
   end do
   call oasis_enddef(ierr)
   allocate (a(ni, nj, 1), b(ni, nj, nlev), land(ni, nj))
   land = .false.
   do k = 1, size(removed)   ! this rank's points in the removed subdomains
      call split(nx, opx, mod(removed(k), opx), oi0, oni)
      call split(ny, opy, removed(k)/opx, oj0, onj)
      land(max(oi0, i0) - i0 + 1:min(oi0 + oni, i0 + ni) - i0, max(oj0, j0) - j0 + 1:min(oj0 + onj, j0 + nj) - j0) = .true.
   end do
   ngap = 0
   nbad = 0
   nrecv = 0
   do step = 0, nsteps - 1
      a = -1
      b = -1
      call oasis_get(var(1), step, a(:, :, 1), info)
      nrecv = nrecv + merge(1, 0, info == OASIS_Recvd)
      call oasis_get(var(2), step, b, info)
      nrecv = nrecv + merge(1, 0, info == OASIS_Recvd)
      ! the analytic values everywhere but in the removed subdomains (none without OPX OPY K), which hold 0
      nbad = nbad + off_land_wrong(a, 1) + off_land_wrong(b, 2)
      ngap = ngap + on_land_nonzero(a) + on_land_nonzero(b)
      call fill(a, 3, step, i0, j0)
      call fill(b, 4, step, i0, j0)
      call oasis_put(var(3), step, a(:, :, 1), info)
      call oasis_put(var(4), step, b, info)
   end do
   print '(a,i0,a,i0,a,i0,a,i0)', 'worker stand-in rank ', rank, ': receptions ', nrecv, ' of ', 2*nsteps, &
      ', wrong values ', nbad
   if (size(removed) > 0) print '(a,i0,a,i0,a,i0)', 'worker stand-in rank ', rank, ': points no ocean rank owns ', &
      count(land), ', values there other than 0: ', ngap
   call oasis_terminate(ierr)

contains

   !> Values of x (ni, nj, nlev) outside the removed subdomains that differ from field fid's analytic values.
   integer function off_land_wrong(x, fid)
      real(dp), intent(in) :: x(:, :, :)         !< received values
      integer, intent(in) :: fid                 !< field id
      real(dp) :: want(size(x, 1), size(x, 2), size(x, 3))
      call fill(want, fid, step, i0, j0)
      off_land_wrong = count(.not. spread(land, 3, size(x, 3)) .and. x /= want)
   end function off_land_wrong

   !> Values of x (ni, nj, nlev) in the removed subdomains other than 0 (the bridge's GAP_FILL).
   integer function on_land_nonzero(x)
      real(dp), intent(in) :: x(:, :, :)         !< received values
      on_land_nonzero = count(spread(land, 3, size(x, 3)) .and. x /= 0)
   end function on_land_nonzero

end program worker_standin
